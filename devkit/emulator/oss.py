"""The OSS emulator (WSGI): the object operations an upload needs, on a local directory.

Addressing: path-style ``/<bucket>/<key>`` (what ``oss2`` and ``ali-oss`` send for an IP
endpoint such as ``http://127.0.0.1:<port>``) or virtual-host (``Host: <bucket>.<anything>``).
Operations: PutObject, InitiateMultipartUpload, UploadPart, CompleteMultipartUpload,
AbortMultipartUpload, ListParts, plus GetObject/HeadObject. Only the temporary credential VOD
issued for an object may write it. Bodies are streamed to disk in chunks, never held whole.

Bytes live in :class:`devkit.emulator.storage.ObjectStore` (layout and size cap described there).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import logging
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from email.utils import formatdate
from typing import Any, BinaryIO
from xml.sax.saxutils import escape

from .auth import OssAuthError, authenticate_oss
from .config import EmulatorConfig
from .cors import CorsPolicy
from .events import EventEngine
from .faults import Faults
from .state import Asset, EmulatorState, MultipartUpload, Part, UploadCredential
from .storage import CHUNK, Digest, ObjectStore, OssError, file_chunks
from .wsgi import Request, Response, StartResponse

__all__ = ["OssApp", "OssError"]

log = logging.getLogger("devkit.emulator.oss")

_NOT_FOUND_UPLOAD = (
    "The specified upload does not exist. The upload ID may be invalid, or the upload may have been "
    "aborted or completed."
)
_CORS_DENIED = (
    "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, "
    "request method / Access-Control-Request-Method or Access-Control-Requet-Headers are not "
    "whitelisted by the resource's CORS spec."
)
_INVALID_PART = (
    "One or more of the specified parts could not be found or the specified entity tag might not "
    "have matched the part's entity tag."
)
_PART_ORDER = (
    "The list of parts was not in ascending order. Parts list must specified in order by part number."
)


def _iso_ms(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _norm_etag(value: str) -> str:
    return value.strip().strip('"').upper()


class OssApp:
    """The WSGI app."""

    def __init__(
        self,
        config: EmulatorConfig,
        state: EmulatorState,
        faults: Faults,
        engine: EventEngine,
        *,
        clock: Callable[[], float],
        store: ObjectStore,
    ) -> None:
        self.config = config
        self.state = state
        self.faults = faults
        self.engine = engine
        self.clock = clock
        self.store = store
        self.cors = CorsPolicy(config.cors_allowed_origins, allow_loopback=config.cors_allow_loopback)

    # --- WSGI -----------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        # waitress sends no body for HEAD, so error answers need no special case.
        return self.handle(Request.from_environ(environ)).finish(start_response)

    def handle(self, req: Request) -> Response:
        """Route one request; every answer gets the request id, Date and CORS headers."""
        request_id = secrets.token_hex(12).upper()
        bucket, key = self._address(req)
        try:
            if req.method == "OPTIONS":
                response = self._preflight(req)
            else:
                response = self._dispatch(req, bucket, key, request_id)
        except (OssError, OssAuthError) as exc:
            response = self._error(exc.status, exc.code, exc.message, request_id, bucket, exc.extra)
        except Exception:
            log.exception("emulator OSS request failed")
            response = self._error(
                500, "InternalError", "We encountered an internal error.", request_id, bucket, {}
            )
        response.headers += [
            ("x-oss-request-id", request_id),
            ("Date", formatdate(self.clock(), usegmt=True)),
            ("Server", "AliyunOSS"),
        ]
        if req.method != "OPTIONS" or response.status == 200:  # a refused preflight gets no ACAO
            response.headers += self.cors.response_headers(req.headers.get("origin"))
        return response

    def _address(self, req: Request) -> tuple[str, str]:
        """(bucket, key): virtual-host, path-style, or bucket-less (some ali-oss versions, IP endpoint)."""
        host = req.headers.get("host", "").rsplit(":", 1)[0].lower()
        path = req.path.lstrip("/")
        if host.startswith(self.config.bucket + "."):
            return self.config.bucket, path
        bucket, _, key = path.partition("/")
        if bucket == self.config.bucket or not key:
            return bucket, key
        # ali-oss without sldEnable sends an IP endpoint's requests as /<key>: one bucket here.
        return self.config.bucket, path

    def _error(
        self, status: int, code: str, message: str, request_id: str, bucket: str, extra: dict[str, str]
    ) -> Response:
        fields = {"Code": code, "Message": message, "RequestId": request_id, **extra}
        fields["HostId"] = f"{bucket or self.config.bucket}.oss-{self.config.region}.aliyuncs.com"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n'
            + "".join(f"  <{k}>{escape(v)}</{k}>\n" for k, v in fields.items())
            + "</Error>\n"
        )
        return Response(status, body.encode("utf-8"), [("Content-Type", "application/xml")])

    @staticmethod
    def _xml(root: str, fields: list[tuple[str, str]] | str) -> Response:
        inner = fields if isinstance(fields, str) else "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields)
        body = f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}>{inner}</{root}>\n'
        return Response(200, body.encode("utf-8"), [("Content-Type", "application/xml")])

    # --- CORS -------------------------------------------------------------------------------------

    def _preflight(self, req: Request) -> Response:
        origin = req.headers.get("origin")
        if not self.cors.preflight_allows(origin, req.headers.get("access-control-request-method", "")):
            raise OssError(403, "AccessForbidden", _CORS_DENIED)
        requested = req.headers.get("access-control-request-headers")
        return Response(200, b"", self.cors.preflight_headers(requested))

    # --- dispatch ---------------------------------------------------------------------------------

    def _dispatch(self, req: Request, bucket: str, key: str, request_id: str) -> Response:
        if self.faults.take_oss_error():
            raise OssError(503, "ServiceUnavailable", "Please reduce your request rate.")
        if bucket != self.config.bucket:
            raise OssError(404, "NoSuchBucket", "The specified bucket does not exist.", BucketName=bucket)
        cred = authenticate_oss(
            req,
            bucket,
            key,
            state=self.state,
            now=self.clock(),
            tolerance=self.config.timestamp_tolerance_seconds,
            region=self.config.region,
        )
        query = req.query()
        if cred is None:
            if (
                req.method in ("GET", "HEAD")
                and key
                and self.config.public_read
                and not query.keys() & {"uploadId"}
            ):
                return self._get_object(req, bucket, key)
            raise OssError(
                403, "AccessDenied", "You have no right to access this object because of bucket acl."
            )
        if cred.bucket != bucket or cred.key != key:
            raise OssError(403, "AccessDenied", "You have no right to access this object.")
        method = req.method
        if method == "PUT" and "partNumber" in query and "uploadId" in query:
            return self._upload_part(req, cred, query["uploadId"], query["partNumber"])
        if method == "PUT" and "x-oss-copy-source" in req.headers:
            raise OssError(501, "NotImplemented", "CopyObject is not emulated.")
        if method == "PUT" and not query.keys() & {"uploadId", "partNumber", "acl", "tagging", "symlink"}:
            return self._put_object(req, cred)
        if method == "POST" and "uploads" in query:
            return self._initiate(cred)
        if method == "POST" and "uploadId" in query:
            return self._complete(req, cred, query["uploadId"])
        if method == "DELETE" and "uploadId" in query:
            return self._abort(cred, query["uploadId"])
        if method == "GET" and "uploadId" in query:
            return self._list_parts(cred, query)
        if method in ("GET", "HEAD") and not query.keys() & {"acl", "tagging", "objectMeta", "symlink"}:
            return self._get_object(req, bucket, key)
        raise OssError(
            403, "AccessDenied", "You have no right to perform this operation with this credential."
        )

    # --- operations -------------------------------------------------------------------------------

    def _check_md5(self, req: Request, digest: Digest) -> None:
        given = req.headers.get("content-md5")
        if given is not None and given.strip() != base64.b64encode(digest.md5.digest()).decode("ascii"):
            raise OssError(400, "InvalidDigest", "The Content-MD5 you specified was invalid.")

    def _check_length(self, req: Request, digest: Digest) -> None:
        declared = req.content_length
        if declared is not None and declared != digest.size:
            raise OssError(400, "IncompleteBody", "The request body is shorter than its Content-Length.")

    def _digest_headers(self, digest: Digest, etag: str | None = None) -> list[tuple[str, str]]:
        headers = [("ETag", etag or digest.etag)]
        if digest.crc is not None:
            headers.append(("x-oss-hash-crc64ecma", str(digest.crc)))
        return headers

    def _put_object(self, req: Request, cred: UploadCredential) -> Response:
        path = self.store.object_path(cred.bucket, cred.key)
        digest = self.store.write_stream(req.iter_body(), path, limit=self.config.max_object_size)
        try:
            self._check_length(req, digest)
            self._check_md5(req, digest)
        except OssError:
            self.store.delete_object(cred.bucket, cred.key)
            raise
        self._finish_object(req, cred, digest, digest.etag, "Normal")
        response = Response(200, b"", self._digest_headers(digest))
        response.headers.append(("Content-MD5", base64.b64encode(digest.md5.digest()).decode("ascii")))
        return response

    def _finish_object(
        self, req: Request, cred: UploadCredential, digest: Digest, etag: str, object_type: str
    ) -> None:
        self.store.finish(
            cred.bucket,
            cred.key,
            {
                "etag": etag,
                "md5": digest.md5.hexdigest(),
                "size": digest.size,
                "crc64": digest.crc,
                "content_type": req.headers.get("content-type") or "application/octet-stream",
                "last_modified": self.clock(),
                "object_type": object_type,
            },
        )
        self.engine.upload_completed(
            cred.media_id,
            size=digest.size,
            md5_hex=digest.md5.hexdigest(),
            path=self.store.object_path(cred.bucket, cred.key),
        )

    def _initiate(self, cred: UploadCredential) -> Response:
        upload_id = secrets.token_hex(16).upper()
        (self.store.root / ".multipart" / upload_id).mkdir(parents=True, exist_ok=True)
        self.state.add_multipart(
            MultipartUpload(
                upload_id=upload_id,
                bucket=cred.bucket,
                key=cred.key,
                media_id=cred.media_id,
                initiated=self.clock(),
            )
        )
        return self._xml(
            "InitiateMultipartUploadResult",
            [("Bucket", cred.bucket), ("Key", cred.key), ("UploadId", upload_id)],
        )

    def _upload(self, cred: UploadCredential, upload_id: str) -> MultipartUpload:
        with self.state.lock:
            upload = self.state.multipart.get(upload_id)
        if upload is None or upload.bucket != cred.bucket or upload.key != cred.key:
            raise OssError(
                404,
                "NoSuchUpload",
                _NOT_FOUND_UPLOAD,
                UploadId=upload_id,
            )
        return upload

    def _upload_part(self, req: Request, cred: UploadCredential, upload_id: str, raw_number: str) -> Response:
        upload = self._upload(cred, upload_id)
        if not raw_number.isdigit() or not 1 <= int(raw_number) <= 10000:
            raise OssError(
                400, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive."
            )
        number = int(raw_number)
        path = self.store.part_path(upload_id, number)
        digest = self.store.write_stream(req.iter_body(), path, limit=5 * 1024**3)
        self._check_length(req, digest)
        self._check_md5(req, digest)
        self.state.add_part(
            upload,
            Part(
                number=number,
                etag=digest.etag,
                size=digest.size,
                crc64=digest.crc,
                last_modified=self.clock(),
            ),
        )
        return Response(200, b"", self._digest_headers(digest))

    def _complete(self, req: Request, cred: UploadCredential, upload_id: str) -> Response:
        upload = self._upload(cred, upload_id)
        with self.state.lock:
            uploaded = dict(upload.parts)
        if req.headers.get("x-oss-complete-all", "").lower() == "yes":
            wanted = [(n, uploaded[n].etag) for n in sorted(uploaded)]
        else:
            wanted = self._parse_complete_body(req)
        if not wanted:
            raise OssError(
                400, "MalformedXML", "The XML you provided was not well-formed or did not validate."
            )
        numbers = [n for n, _ in wanted]
        if any(b <= a for a, b in itertools.pairwise(numbers)):
            raise OssError(
                400,
                "InvalidPartOrder",
                _PART_ORDER,
            )
        for number, etag in wanted:
            part = uploaded.get(number)
            if part is None or _norm_etag(part.etag) != _norm_etag(etag):
                raise OssError(
                    400,
                    "InvalidPart",
                    _INVALID_PART,
                    PartNumber=str(number),
                )
        for number, _ in wanted[:-1]:
            if uploaded[number].size < self.config.min_part_size:
                raise OssError(
                    400,
                    "EntityTooSmall",
                    "Your proposed upload is smaller than the minimum allowed size.",
                    PartNumber=str(number),
                    MinSizeAllowed=str(self.config.min_part_size),
                )
        dest = self.store.object_path(cred.bucket, cred.key)
        digest = self.store.concat([self.store.part_path(upload_id, n) for n in numbers], dest)
        combined = hashlib.md5(usedforsecurity=False)
        for number in numbers:
            combined.update(bytes.fromhex(_norm_etag(uploaded[number].etag)))
        etag = f'"{combined.hexdigest().upper()}-{len(numbers)}"'
        self.state.remove_multipart(upload_id)
        self.store.delete_upload(upload_id)
        self._finish_object(req, cred, digest, etag, "Multipart")
        host = req.headers.get("host", "")
        response = self._xml(
            "CompleteMultipartUploadResult",
            [
                ("Location", f"http://{host}/{cred.bucket}/{cred.key}"),
                ("Bucket", cred.bucket),
                ("Key", cred.key),
                ("ETag", etag),
            ],
        )
        response.headers += self._digest_headers(digest, etag)
        return response

    @staticmethod
    def _parse_complete_body(req: Request) -> list[tuple[int, str]]:
        raw = req.read_body(1024 * 1024)
        malformed = OssError(
            400, "MalformedXML", "The XML you provided was not well-formed or did not validate."
        )
        if not raw:
            raise malformed
        try:
            # Trusted enough: a local dev tool, body capped at 1 MB; expat refuses external entities.
            root = ET.fromstring(raw)  # noqa: S314
        except ET.ParseError:
            raise malformed from None
        if root.tag != "CompleteMultipartUpload":
            raise malformed
        parts: list[tuple[int, str]] = []
        for node in root.findall("Part"):
            number = (node.findtext("PartNumber") or "").strip()
            etag = node.findtext("ETag") or ""
            if not number.isdigit() or not etag.strip():
                raise malformed
            parts.append((int(number), etag))
        return parts

    def _abort(self, cred: UploadCredential, upload_id: str) -> Response:
        self._upload(cred, upload_id)
        self.state.remove_multipart(upload_id)
        self.store.delete_upload(upload_id)
        return Response(204)

    def _list_parts(self, cred: UploadCredential, query: dict[str, str]) -> Response:
        upload = self._upload(cred, query["uploadId"])
        max_parts = int(query["max-parts"]) if query.get("max-parts", "").isdigit() else 1000
        marker = int(query["part-number-marker"]) if query.get("part-number-marker", "").isdigit() else 0
        with self.state.lock:
            parts = [upload.parts[n] for n in sorted(upload.parts) if n > marker]
        page, truncated = parts[:max_parts], len(parts) > max_parts
        inner = "".join(
            f"<{k}>{escape(v)}</{k}>"
            for k, v in [
                ("Bucket", cred.bucket),
                ("Key", cred.key),
                ("UploadId", upload.upload_id),
                ("PartNumberMarker", str(marker)),
                ("NextPartNumberMarker", str(page[-1].number if page else marker)),
                ("MaxParts", str(max_parts)),
                ("IsTruncated", "true" if truncated else "false"),
            ]
        )
        for part in page:
            inner += (
                f"<Part><PartNumber>{part.number}</PartNumber><LastModified>{_iso_ms(part.last_modified)}"
                f"</LastModified><ETag>{escape(part.etag)}</ETag>"
                + (f"<HashCrc64ecma>{part.crc64}</HashCrc64ecma>" if part.crc64 is not None else "")
                + f"<Size>{part.size}</Size></Part>"
            )
        return self._xml("ListPartsResult", inner)

    def _get_object(self, req: Request, bucket: str, key: str) -> Response:
        path = self.store.object_path(bucket, key)
        if not path.is_file():
            if self.store.is_pruned(bucket, key):
                raise OssError(
                    404,
                    "NoSuchKey",
                    "The specified key does not exist: the emulator pruned its bytes to stay under "
                    "max_storage_bytes (its record, size and MD5 remain).",
                    Key=key,
                )
            raise OssError(404, "NoSuchKey", "The specified key does not exist.", Key=key)
        meta = self.store.read_meta(bucket, key)
        size = path.stat().st_size
        headers = [
            ("Content-Type", str(meta.get("content_type") or "application/octet-stream")),
            ("Content-Length", str(size)),
            (
                "Last-Modified",
                formatdate(float(meta.get("last_modified") or path.stat().st_mtime), usegmt=True),
            ),
            ("x-oss-object-type", str(meta.get("object_type") or "Normal")),
            ("x-oss-storage-class", "Standard"),
        ]
        if meta.get("etag"):
            headers.append(("ETag", str(meta["etag"])))
        if meta.get("crc64") is not None:
            headers.append(("x-oss-hash-crc64ecma", str(meta["crc64"])))
        if req.method == "HEAD":
            return Response(200, b"", headers)
        wrapper = req.environ.get("wsgi.file_wrapper")
        if wrapper is not None:
            fh: BinaryIO = path.open("rb")
            return Response(200, wrapper(fh, CHUNK), headers)
        return Response(200, file_chunks(path), headers)

    # --- used by DeleteVideo, DeleteImage, DeleteAttachedMedia -----------------------------------

    def delete_media_files(self, media: Asset, uploads: list[MultipartUpload]) -> None:
        """Remove a deleted asset's object and unfinished parts."""
        self.store.delete_object(self.config.bucket, media.object_key)
        for upload in uploads:
            self.store.delete_upload(upload.upload_id)
