"""APEX lakehouse: PySpark medallion jobs (bronze, silver, gold) on Delta tables written by delta-rs."""
