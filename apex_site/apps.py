"""apex_site's one app config: the admin, with APEX's site (apex_site.admin_site) as ``admin.site``."""

from django.contrib.admin.apps import AdminConfig


class ApexAdminConfig(AdminConfig):
    default_site = "apex_site.admin_site.ApexAdminSite"
