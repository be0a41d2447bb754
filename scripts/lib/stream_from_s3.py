"""Reads every split of a version in S3 with mosaicml-streaming's StreamingDataset (the torch IterableDataset a
trainer uses), checks the sample counts against the version's manifest.json, and decodes every sample."""
import json
import os
import sys
import tempfile
from urllib.parse import urlparse

import boto3
from streaming import StreamingDataset


def main(remote: str) -> None:
    url = urlparse(remote)
    client = boto3.client("s3", endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None)
    manifest = json.loads(client.get_object(Bucket=url.netloc, Key=url.path.strip("/") + "/manifest.json")["Body"].read())
    failures = 0
    for split, record in sorted(manifest["splits"].items()):
        if record["samples"] == 0:
            continue
        local = tempfile.mkdtemp(prefix=f"mds-cache-{split}-")
        dataset = StreamingDataset(remote=remote, local=local, split=split, shuffle=False, batch_size=1)
        keys = set()
        for sample in dataset:
            keys.add(sample["__key__"])
        ok = len(dataset) == record["samples"] == len(keys)
        failures += not ok
        print(f"{remote} {split}: StreamingDataset decoded {len(keys)} samples (manifest: {record['samples']})"
              + ("" if ok else "  MISMATCH"))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main(sys.argv[1])
