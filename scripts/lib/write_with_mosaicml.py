"""The bench's second baseline: what a data engineer would write in Python for the small-row shape.

psycopg 3 with a server-side cursor (rows fetched in batches, bounded memory) feeding mosaicml-streaming's own
MDSWriter with zstd:3 and sha256, the columns etl writes. mosaicml-streaming's package __init__ imports torch, so the
writer's modules are loaded from the installed package's files under stand-in parent packages, and its cloud
uploader is replaced by a local-only one (the writer only writes locally here).
Usage: write_with_mosaicml.py <output dir> <query>
"""
import importlib.util
import os
import sys
import types

import psycopg


def load_writer(root: str):
    for name in ("streaming", "streaming.base", "streaming.base.format", "streaming.base.storage"):
        module = types.ModuleType(name)
        module.__path__ = [os.path.join(root, *name.split("."))]
        sys.modules[name] = module
    util = types.ModuleType("streaming.base.util")
    util.bytes_to_int = int
    sys.modules["streaming.base.util"] = util

    class LocalUploader:
        def __init__(self, out):
            self.local, self.remote = out, None

        @classmethod
        def get(cls, out, keep_local=False, progress_bar=False, retry=2, exist_ok=False):
            os.makedirs(out, exist_ok=True)
            return cls(out)

        def upload_file(self, name):
            pass

    upload = types.ModuleType("streaming.base.storage.upload")
    upload.CloudUploader = LocalUploader
    sys.modules["streaming.base.storage.upload"] = upload

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, os.path.join(root, *name.split(".")) + ".py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    for name in ("streaming.base.compression", "streaming.base.hashing", "streaming.base.format.index",
                 "streaming.base.format.base.writer", "streaming.base.format.mds.encodings"):
        load(name)
    return load("streaming.base.format.mds.writer").MDSWriter


def main(out: str, query: str) -> None:
    root = os.path.dirname(list(importlib.util.find_spec("streaming").submodule_search_locations)[0])
    MDSWriter = load_writer(root)
    columns = {"__key__": "str", "user_id": "int32", "a": "str", "b": "str", "c": "str", "d": "str"}
    with psycopg.connect("") as conn, conn.cursor(name="bench") as cursor:
        cursor.itersize = 10_000
        cursor.execute(query)
        with MDSWriter(out=out, columns=columns, compression="zstd:3", hashes=["sha256"], size_limit=1 << 26) as writer:
            for id_, user_id, a, b, c, d in cursor:
                writer.write({"__key__": str(id_), "user_id": user_id, "a": a, "b": b, "c": c, "d": d})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
