{
  "targets": [
    {
      "target_name": "fsx",
      "sources": ["native/fsx.c", "native/fsx-util.c", "native/fsx-at.c", "native/fsx-mem.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"],
      "xcode_settings": {
        "OTHER_CFLAGS": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"]
      }
    }
  ]
}
