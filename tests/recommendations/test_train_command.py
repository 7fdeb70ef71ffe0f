"""manage.py train forwards to the ml_core CLI."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError


def test_unknown_dataset_is_a_clear_command_error(capsys):
    with pytest.raises(CommandError) as info:
        call_command("train", "--dataset", "ml-1b", "--models", "ease")
    assert info.value.returncode == 2
    assert "ml-1b" in capsys.readouterr().err
