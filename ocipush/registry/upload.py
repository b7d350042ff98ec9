"""Blob upload: skip what exists, mount across repositories, monolithic for small blobs, chunked for large ones.

Chunked uploads follow what ECR needs (every non-final chunk >= 5 MiB, at most 4,200 parts, strictly sequential,
201 or 202 accepted, the Range header not trusted beyond what is consistent with what we sent) and are resumable:
within the process from the last byte the registry holds, and after a crash through the upload journal."""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from ocipush.blobsource import BlobSource, FileBlobSource, FileRangeBody
from ocipush.errors import OcipushError, RegistryError, TransferStopped, TransportError, UsageError
from ocipush.log import get_logger
from ocipush.progress import ProgressCallback, ProgressEvent, ignore_progress
from ocipush.registry.client import RegistryClient
from ocipush.registry.ecr import is_ecr, is_ecr_public
from ocipush.registry.errors import registry_error
from ocipush.registry.journal import JournalEntry, UploadJournal
from ocipush.registry.options import DEFAULT_CHUNK_SIZE, MIN_CHUNK_SIZE
from ocipush.registry.retry import RETRYABLE_STATUS
from ocipush.registry.transport import BodyFactory
from ocipush.registry.wire import Response, WireError

_log = get_logger(__name__)

MAX_PARTS = 4200
MAX_PARTS_ECR_PUBLIC = 1000
# Blobs up to this size go as POST + PUT with the body: one round trip, nothing worth resuming.
MONOLITHIC_MAX = DEFAULT_CHUNK_SIZE
MAX_FRESH_SESSIONS = 3
PROGRESS_STEP = 8 << 20
UploadOutcome = Literal["exists", "mounted", "uploaded"]


def chunk_size_for(size: int, preferred: int | None, max_parts: int = MAX_PARTS) -> int:
    """The part size for a blob: `preferred`, but at least 5 MiB and at least what keeps the blob within the
    registry's part limit (ECR 4,200, ECR Public 1,000), rounded up to a whole MiB. Without a preference the
    whole blob is one part."""
    needed = math.ceil(size / max_parts)
    chunk = max(preferred or size, MIN_CHUNK_SIZE, needed)
    return math.ceil(chunk / (1 << 20)) * (1 << 20)


@dataclass
class _Session:
    """An upload session's URL and the bytes it holds."""

    url: str
    offset: int


class BlobUploader:
    """Uploads blobs into one repository; safe to use from several threads (one blob per call)."""

    def __init__(
        self,
        client: RegistryClient,
        journal: UploadJournal,
        chunk_size: int | None,
        progress: ProgressCallback = ignore_progress,
        stop: threading.Event | None = None,
    ) -> None:
        self.client = client
        self.stop = stop or threading.Event()
        self.journal = journal
        self.preferred_chunk = chunk_size
        self.progress = progress
        # ECR's Range stops advancing after the first part: its count is never evidence of what it holds.
        self._range_lies = is_ecr(client.transport.host)

    def upload(self, source: BlobSource, mount_from: Iterable[str] = ()) -> UploadOutcome:
        digest = source.digest
        self._check_stop()
        if self.client.blob_size(digest, push=True) is not None:
            self.progress(ProgressEvent("skip", digest, source.size, source.size, "exists"))
            return "exists"
        session_url: str | None = None
        for repository in mount_from:
            if repository == self.client.repository:
                continue
            session_url, mounted = self.client.start_upload(mount=digest, mount_from=repository)
            if mounted:
                _log.info("mounted %s into %s from %s", digest[:19], self.client.name, repository)
                self.progress(ProgressEvent("mount", digest, source.size, source.size, f"from {repository}"))
                return "mounted"
            break  # a 202 opened a normal session: use it instead of asking again
        if source.size == 0 and self.client.transport.auth.ecr_host is not None:
            raise UsageError(f"blob {digest[:19]} is empty: ECR cannot store a zero-byte blob (no layer may be empty)")
        self.progress(ProgressEvent("start", digest, source.size, 0))
        entry = self._journal_entry(digest)
        # A resumed upload keeps the part size it started with: part boundaries must line up with the journal.
        max_parts = MAX_PARTS_ECR_PUBLIC if is_ecr_public(self.client.transport.host) else MAX_PARTS
        chunk = entry.chunk_size if entry else chunk_size_for(source.size, self.preferred_chunk, max_parts)
        if source.size <= min(chunk, MONOLITHIC_MAX) and entry is None:
            self._upload_monolithic(source, session_url)
        else:
            if session_url:
                self.client.cancel_upload(session_url)
            self._upload_chunked(source, chunk)
        self.progress(ProgressEvent("done", digest, source.size, source.size))
        return "uploaded"

    # --- monolithic ----------------------------------------------------------------------------------------------

    def _upload_monolithic(self, source: BlobSource, session_url: str | None) -> None:
        budget = self.client.transport.budget()
        while True:
            url = session_url or self.client.start_upload()[0]
            session_url = None
            assert url is not None
            try:
                self.client.finish_upload(
                    url,
                    source.digest,
                    body=self._body(source, 0, source.size),
                    length=source.size,
                )
                return
            except (TransportError, RegistryError) as exc:
                if isinstance(exc, RegistryError) and exc.status not in RETRYABLE_STATUS:
                    raise
                if self.client.blob_size(source.digest, push=True) is not None:
                    return  # the registry stored it; only the answer was lost
                if not budget.sleep(why=str(exc), announce=self._announcer(source, 0)):
                    raise

    def _announcer(self, source: BlobSource, done: int) -> Callable[[str], None]:
        return lambda message: self.progress(ProgressEvent("retry", source.digest, source.size, done, message))

    # --- chunked -------------------------------------------------------------------------------------------------

    def _journal_entry(self, digest: str) -> JournalEntry | None:
        return self.journal.load(self.client.transport.host, self.client.repository, digest)

    def _record(self, source: BlobSource, session: _Session, chunk: int) -> None:
        entry = JournalEntry(
            self.client.transport.host, self.client.repository, source.digest, session.url, session.offset, chunk
        )
        self.journal.save(entry)

    def _resume_from_journal(self, source: BlobSource) -> tuple[_Session, bool] | None:
        """The journaled session, if the registry still knows it, and whether its byte count was in doubt."""
        entry = self._journal_entry(source.digest)
        if entry is None:
            return None
        status = self._status(entry.url)
        if status is None:
            return None
        url, held = status
        # Only trust the registry's count when it is consistent with what we know it acknowledged.
        consistent = entry.offset <= held <= source.size and not self._range_lies
        offset = held if consistent else entry.offset
        _log.info("resuming the upload of %s to %s at byte %d (upload journal)", source.digest[:19], self.client.name,
                  offset)  # fmt: skip
        self.progress(ProgressEvent("resume", source.digest, source.size, offset, "from the upload journal"))
        return _Session(url, offset), not consistent

    def _status(self, url: str) -> tuple[str, int] | None:
        try:
            return self.client.upload_status(url)
        except OcipushError:
            return None

    def _new_session(self, source: BlobSource, chunk: int) -> _Session:
        url, _ = self.client.start_upload()
        assert url is not None
        session = _Session(url, 0)
        # Journaled at once: a registry that keeps what an interrupted PATCH delivered can be asked for it later.
        self._record(source, session, chunk)
        return session

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise TransferStopped

    def _body(self, source: BlobSource, start: int, length: int) -> BodyFactory:
        """What sends the part: a file's bytes by sendfile, any other source's as they are read."""
        if isinstance(source, FileBlobSource):
            reported = [start]

            def sent(done: int) -> None:
                self._check_stop()
                if start + done - reported[0] >= PROGRESS_STEP:
                    reported[0] = start + done
                    self.progress(ProgressEvent("progress", source.digest, source.size, start + done))

            return lambda: FileRangeBody(source.path, start, length, sent)
        return functools.partial(self._reporting, source, start, length)

    def _reporting(self, source: BlobSource, start: int, length: int) -> Iterator[bytes]:
        """The part's bytes, with a progress event every PROGRESS_STEP (a part can be the whole blob); stops
        between pieces when the transfer is being stopped."""
        sent, reported = start, start
        for data in source.read_range(start, length):
            self._check_stop()
            yield data
            sent += len(data)
            if sent - reported >= PROGRESS_STEP:
                self.progress(ProgressEvent("progress", source.digest, source.size, sent))
                reported = sent

    def _upload_chunked(self, source: BlobSource, chunk: int) -> None:
        session, doubtful = self._resume_from_journal(source) or (self._new_session(source, chunk), False)
        # doubtful: we kept our own offset against the registry's answer (ECR's Range stops advancing)
        fresh_sessions = 0
        skipped_ahead = False
        budget = self.client.transport.budget()
        while session.offset < source.size:
            start = session.offset
            length = min(chunk, source.size - start)
            failure: str
            try:
                url, response = self.client.patch_chunk(session.url, start, length, self._body(source, start, length))
                if response.status_code in (201, 202):
                    session = _Session(url, start + length)
                    self._record(source, session, chunk)
                    self.progress(ProgressEvent("progress", source.digest, source.size, session.offset))
                    doubtful = skipped_ahead = False
                    budget = self.client.transport.budget()  # the retry limits count from the last progress
                    continue
                failure = f"HTTP {response.status_code}"
                mismatch = _is_range_mismatch(response)
                if not mismatch and response.status_code not in (*RETRYABLE_STATUS, 404) and response.status_code < 500:
                    raise registry_error(response, f"upload chunk of {source.digest[:19]} to {self.client.name}")
                if mismatch:
                    if doubtful and not skipped_ahead and start + length < source.size:
                        # The chunk in flight when an attempt (or the process) died may have been stored with
                        # only its answer lost. A registry refuses a part that does not start at its true size,
                        # so trying the next boundary can never skip data.
                        session, skipped_ahead = _Session(session.url, start + length), True
                        continue
                    # Refused where the registry's own count said to go on: its state is not what we think.
                    session, doubtful = self._restart(source, chunk, fresh_sessions), False
                    fresh_sessions += 1
                    continue
            except (TransportError, WireError) as exc:
                failure = str(exc) or exc.__class__.__name__
            if not budget.sleep(why=failure, announce=self._announcer(source, start)):
                raise TransportError(f"upload of {source.digest[:19]} to {self.client.name} failed: {failure}")
            status = self._status(session.url)
            if status is None:
                session, doubtful = self._restart(source, chunk, fresh_sessions), False
                fresh_sessions += 1
                continue
            url, held = status
            if start <= held <= start + length and not self._range_lies:
                session = _Session(url, held)
                if held != start:
                    self._record(source, session, chunk)
            else:
                # ECR's Range can stop advancing: keep the offset we tracked and retry the chunk from there.
                session, doubtful = _Session(session.url, start), True
        try:
            self.client.finish_upload(session.url, source.digest)
        except (TransportError, RegistryError):
            # The PUT may have been applied with only its answer lost: the blob being there settles it.
            if self.client.blob_size(source.digest, push=True) is None:
                raise
        self.journal.remove(self.client.transport.host, self.client.repository, source.digest)

    def _restart(self, source: BlobSource, chunk: int, fresh_sessions: int) -> _Session:
        if fresh_sessions >= MAX_FRESH_SESSIONS:
            raise RegistryError(f"upload of {source.digest[:19]} to {self.client.name} kept losing its session")
        self.journal.remove(self.client.transport.host, self.client.repository, source.digest)
        self.progress(ProgressEvent("retry", source.digest, source.size, 0, "upload session lost; starting over"))
        return self._new_session(source, chunk)


def _is_range_mismatch(response: Response) -> bool:
    """416, or ECR's "First byte of the layer part is X instead of Y": the part did not start at the registry's size."""
    return response.status_code == 416 or (
        response.status_code == 400 and b"first byte of the layer part" in response.content.lower()
    )
