{
  "targets": [
    {
      "target_name": "coffer_exec",
      "sources": ["exec.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
