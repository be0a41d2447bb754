"""Reads an etl dataset version with mosaicml-streaming's MDS reader, hashing and compression modules.

StreamingDataset itself needs torch; its shard reader does not. The package's __init__ imports torch, so the
modules a reader needs are loaded from the installed package's files under stand-in parent packages.
"""
import importlib.util
import json
import os
import sys
import tempfile
import types



def streaming_root() -> str:
    spec = importlib.util.find_spec("streaming")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("mosaicml-streaming is not installed")
    return os.path.dirname(list(spec.submodule_search_locations)[0])


def load_reader_modules(root: str):
    def package(name: str) -> None:
        module = types.ModuleType(name)
        module.__path__ = [os.path.join(root, *name.split("."))]
        sys.modules[name] = module

    for name in ("streaming", "streaming.base", "streaming.base.format"):
        package(name)
    # The readers use one helper of streaming.base.util, whose module imports torch.distributed.
    util = types.ModuleType("streaming.base.util")
    util.bytes_to_int = int
    sys.modules["streaming.base.util"] = util

    def load(name: str):
        path = os.path.join(root, *name.split(".")) + ".py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    load("streaming.base.array")
    load("streaming.base.format.base.reader")
    load("streaming.base.format.mds.encodings")
    return (load("streaming.base.format.mds.reader"), load("streaming.base.compression"),
            load("streaming.base.hashing"))


def main(version_dir: str) -> None:
    reader_module, compression, hashing = load_reader_modules(streaming_root())
    manifest = json.load(open(os.path.join(version_dir, "manifest.json")))
    total = 0
    for split in sorted(manifest["splits"]):
        index = json.load(open(os.path.join(version_dir, split, "index.json")))
        assert index["version"] == 2, "index.json version"
        local = tempfile.mkdtemp()
        os.makedirs(os.path.join(local, split))
        for shard in index["shards"]:
            stored = shard["zip_data"] or shard["raw_data"]
            data = open(os.path.join(version_dir, split, stored["basename"]), "rb").read()
            for algo, digest in stored["hashes"].items():
                assert hashing.get_hash(algo, data) == digest, f"{algo} of {split}/{stored['basename']}"
            raw = compression.decompress(shard["compression"], data)
            for algo, digest in shard["raw_data"]["hashes"].items():
                assert hashing.get_hash(algo, raw) == digest, f"{algo} of raw {split}/{stored['basename']}"
            with open(os.path.join(local, split, shard["raw_data"]["basename"]), "wb") as out:
                out.write(raw)
            reader = reader_module.MDSReader.from_json(local, split, shard)
            for i in range(reader.samples):
                sample = reader.get_item(i)
                if total == 0:
                    shapes = {k: getattr(v, "shape", type(v).__name__) for k, v in sorted(sample.items())}
                    print(f"  first sample: {shapes}")
                total += 1
        print(f"  {split}: {sum(s['samples'] for s in index['shards'])} samples in {len(index['shards'])} shards")
    expected = manifest["counts"]["samples"]
    assert total == expected, f"read {total} samples, the manifest says {expected}"
    print(f"mosaicml-streaming's reader read all {total} samples; every shard hash matched")


if __name__ == "__main__":
    main(sys.argv[1])
