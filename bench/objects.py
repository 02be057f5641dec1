"""Objects for bench/copy.sh: fill a local S3 server with deterministic objects, and check
what a copy landed in Azurite against them by reading every blob back.

    objects.py put    --endpoint URL --bucket B --prefix P --count N --size BYTES
                      --threads T --manifest FILE
    objects.py verify --container C --prefix P --manifest FILE --threads T
    objects.py delete --container C --prefix P

`put` writes N objects `P/obj-NNNNN.bin` of BYTES each (objects over 64 MiB as multipart
uploads, streamed: memory stays small) and a manifest {key below P: [size, md5]}. `verify`
lists every blob under C/P, downloads each (streamed) and checks that the names, sizes and MD5s
are exactly the manifest's; it prints one JSON line and exits 1 on any difference. `delete`
removes the blobs under C/P. Azure access: AZURE_STORAGE_CONNECTION_STRING (Azurite). S3 access:
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the environment.

Runs in .testbed/venv (boto3 comes with moto, azure-storage-blob with the dlt bench).
"""

import argparse
import concurrent.futures
import hashlib
import json
import os
import random
import sys

PIECE = 8 * 1024 * 1024
MULTIPART_OVER = 64 * 1024 * 1024


def pieces(index, size):
    """The object's bytes, PIECE at a time: pseudo-random (incompressible), seeded by index."""
    rng = random.Random(index)
    left = size
    while left > 0:
        n = min(PIECE, left)
        yield rng.randbytes(n)
        left -= n


def s3_client(endpoint, threads):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        config=Config(
            max_pool_connections=threads,
            s3={"addressing_style": "path"},
            retries={"max_attempts": 5},
        ),
    )


def put_one(s3, bucket, key, index, size):
    md5 = hashlib.md5()
    if size <= MULTIPART_OVER:
        body = b"".join(pieces(index, size))
        md5.update(body)
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        return md5.hexdigest()
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts, buf, number = [], bytearray(), 1
    for piece in pieces(index, size):
        md5.update(piece)
        buf += piece
        if len(buf) >= MULTIPART_OVER:
            etag = s3.upload_part(
                Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=bytes(buf)
            )["ETag"]
            parts.append({"ETag": etag, "PartNumber": number})
            buf, number = bytearray(), number + 1
    if buf:
        etag = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=bytes(buf)
        )["ETag"]
        parts.append({"ETag": etag, "PartNumber": number})
    s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
    )
    return md5.hexdigest()


def cmd_put(a):
    s3 = s3_client(a.endpoint, a.threads)
    try:
        s3.create_bucket(Bucket=a.bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    prefix = a.prefix.strip("/")
    names = [f"obj-{i:05d}.bin" for i in range(a.count)]
    with concurrent.futures.ThreadPoolExecutor(a.threads) as pool:
        md5s = list(
            pool.map(
                lambda i: put_one(s3, a.bucket, f"{prefix}/{names[i]}", i, a.size),
                range(a.count),
            )
        )
    manifest = {name: [a.size, md5] for name, md5 in zip(names, md5s)}
    with open(a.manifest, "w") as f:
        json.dump(manifest, f)


def container_client(name):
    from azure.storage.blob import BlobServiceClient

    conn = os.environ["AZURE_STORAGE_CONNECTION_STRING"]
    return BlobServiceClient.from_connection_string(conn).get_container_client(name)


def cmd_verify(a):
    container = container_client(a.container)
    prefix = a.prefix.strip("/") + "/"
    manifest = json.load(open(a.manifest))
    blobs = {
        b.name[len(prefix):]: b.size
        for b in container.list_blobs(name_starts_with=prefix)
        # gatelake's own run files (_manifest.json, _SUCCESS, load.sql, _state/) are not data.
        if not os.path.basename(b.name).startswith("_") and not b.name.endswith("load.sql")
        and "/_state/" not in b.name
    }
    # gatelake may land objects under a run folder: match by the name below any extra folders.
    by_name = {}
    for path, size in blobs.items():
        by_name.setdefault(path.rsplit("/", 1)[-1], []).append((path, size))
    problems = []
    for name in sorted(set(manifest) - set(by_name)):
        problems.append(f"missing {name}")
    for name in sorted(set(by_name) - set(manifest)):
        problems.append(f"unexpected {name}")
    for name, found in by_name.items():
        if len(found) > 1:
            problems.append(f"{name} landed {len(found)} times: {[p for p, _ in found]}")

    def check(name):
        path, size = by_name[name][0]
        want_size, want_md5 = manifest[name]
        if size != want_size:
            return f"{path}: {size} bytes, expected {want_size}"
        md5 = hashlib.md5()
        for chunk in container.download_blob(prefix + path, max_concurrency=2).chunks():
            md5.update(chunk)
        if md5.hexdigest() != want_md5:
            return f"{path}: content differs (md5 {md5.hexdigest()}, expected {want_md5})"
        return None

    with concurrent.futures.ThreadPoolExecutor(a.threads) as pool:
        names = sorted(set(manifest) & set(by_name))
        problems += [p for p in pool.map(check, names) if p]
    result = {
        "objects": len(blobs),
        "bytes": sum(blobs.values()),
        "ok": not problems,
        "problems": problems[:20],
    }
    print(json.dumps(result))
    sys.exit(0 if not problems else 1)


def cmd_delete(a):
    container = container_client(a.container)
    prefix = a.prefix.strip("/") + "/"
    names = [b.name for b in container.list_blobs(name_starts_with=prefix)]
    for i in range(0, len(names), 256):
        container.delete_blobs(*names[i : i + 256])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    put = sub.add_parser("put")
    put.add_argument("--endpoint", required=True)
    put.add_argument("--bucket", required=True)
    put.add_argument("--prefix", required=True)
    put.add_argument("--count", type=int, required=True)
    put.add_argument("--size", type=int, required=True)
    put.add_argument("--threads", type=int, default=8)
    put.add_argument("--manifest", required=True)
    ver = sub.add_parser("verify")
    ver.add_argument("--container", required=True)
    ver.add_argument("--prefix", required=True)
    ver.add_argument("--manifest", required=True)
    ver.add_argument("--threads", type=int, default=8)
    de = sub.add_parser("delete")
    de.add_argument("--container", required=True)
    de.add_argument("--prefix", required=True)
    a = p.parse_args()
    {"put": cmd_put, "verify": cmd_verify, "delete": cmd_delete}[a.cmd](a)


if __name__ == "__main__":
    main()
