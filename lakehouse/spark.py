"""The Spark session: local[*] by default, a real cluster when SPARK_MASTER_URL (or SPARK_MASTER) is set."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from urllib.parse import urlparse

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

# Measured on this stack: C1-only JIT and serial GC halve JVM startup for short local jobs (tests);
# long runs keep the full JIT unless SPARK_FAST_JVM=1.
FAST_JVM_FLAGS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


class SparkUnavailable(RuntimeError):
    """No Java runtime, so no Spark: the message says what to install."""


def java_available() -> bool:
    """True when a java binary is on PATH or under JAVA_HOME."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.path.exists(os.path.join(java_home, "bin", "java")):
        return True
    return shutil.which("java") is not None


LOOPBACK = ("127.0.0.1", "localhost")


def master_url(master: str | None = None) -> str:
    """The master to use: the argument, else SPARK_MASTER_URL, else SPARK_MASTER, else ``local[*]``."""
    return master or os.environ.get("SPARK_MASTER_URL") or os.environ.get("SPARK_MASTER") or "local[*]"


def spark_session(
    *,
    master: str | None = None,
    app_name: str = "apex-lakehouse",
    shuffle_partitions: int | None = None,
    fast_jvm: bool | None = None,
    extra_conf: dict[str, str] | None = None,
) -> SparkSession:
    """Get or create the session, configured from arguments, then SPARK_MASTER and friends."""
    if not java_available():
        raise SparkUnavailable("Spark needs Java 17: install openjdk-17-jre-headless or set JAVA_HOME")
    master = master_url(master)
    is_local = master.startswith("local")
    if is_local or urlparse(master).hostname in LOOPBACK:
        # Otherwise Spark binds the eth0 address, which sandboxes and CI runners may refuse; a cluster on
        # loopback (bin/spark-cluster) must reach the driver there too.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    partitions = shuffle_partitions or int(os.environ.get("SPARK_SHUFFLE_PARTITIONS", "8" if is_local else "200"))
    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", os.environ.get("SPARK_DRIVER_MEMORY", "2g"))
        # executors write the table files and the driver commits their metadata only (lakehouse.files),
        # so Spark's default 1 GiB result cap stays
        .config("spark.driver.maxResultSize", os.environ.get("SPARK_DRIVER_MAX_RESULT_SIZE", "1g"))
        # Delta timestamps are microseconds (Spark's default INT96 is not in the Delta protocol)
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        # the executors' Python (a cluster's workers start it) is this interpreter unless PYSPARK_PYTHON says
        .config("spark.pyspark.python", os.environ.get("PYSPARK_PYTHON", sys.executable))
    )
    if not is_local:
        builder = builder.config("spark.executor.memory", os.environ.get("SPARK_EXECUTOR_MEMORY", "1g"))
    if fast_jvm if fast_jvm is not None else os.environ.get("SPARK_FAST_JVM", "") == "1":
        builder = builder.config("spark.driver.extraJavaOptions", FAST_JVM_FLAGS)
    jars = os.environ.get("APEX_DELTA_SPARK_JARS", "")
    if jars:
        builder = (
            builder.config("spark.jars", jars)
            .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
            .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        )
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("SPARK_LOG_LEVEL", "ERROR"))
    log.info("spark session on %s (%s shuffle partitions)", master, partitions)
    return spark
