"""audithound's Spark driver (see src/state/cluster.rs): runs each task of a task list, an
audithound command line, on the cluster's executors, and writes what each one returned.

    python spark_driver.py SPEC.json

SPEC holds the master URL, the working directory the tasks run in, the tasks ({part, argv}) and
where the results go. A task is run in a fresh part folder, so Spark may run it again elsewhere
after an executor is lost; a task's own failure is returned, not retried.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time


def run(task, cwd):
    from pyspark import TaskContext

    shutil.rmtree(task["part"], ignore_errors=True)
    # A task gets the cores Spark gave it (spark.task.cpus), not every core of the worker: the
    # executor runs as many tasks side by side as it has cores.
    cores = str(TaskContext.get().cpus())
    env = dict(os.environ, RAYON_NUM_THREADS=cores, POLARS_MAX_THREADS=cores)
    started = time.time()
    try:
        done = subprocess.run(
            task["argv"], cwd=cwd, env=env, capture_output=True, text=True, errors="replace"
        )
        code, stderr = done.returncode, done.stderr
    except OSError as e:
        # No binary or working directory on this worker: the task's failure, not Spark's.
        code, stderr = 127, f"cannot run {task['argv'][0]} in {cwd}: {e}"
    return {
        "part": task["part"],
        "code": code,
        "seconds": time.time() - started,
        "host": socket.gethostname(),
        "stderr": stderr[-4000:],
    }


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        print(f"pyspark is not installed for {sys.executable}: pip install pyspark", file=sys.stderr)
        return 3
    spark = (
        SparkSession.builder.master(spec["master"])
        .appName("audithound-ingest")
        .config("spark.ui.enabled", "false")
        # Two copies of one task would write the same part folder at once.
        .config("spark.speculation", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    tasks, cwd = spec["tasks"], spec["cwd"]
    try:
        results = (
            spark.sparkContext.parallelize(tasks, len(tasks))
            .map(lambda task: run(task, cwd))
            .collect()
        )
    finally:
        spark.stop()
    with open(spec["results"], "w") as f:
        json.dump(results, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
