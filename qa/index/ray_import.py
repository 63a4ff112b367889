"""The backlog on Ray: ``newsqa import FILE --ray [ADDRESS]``.

Chunking and embedding, nearly all of an import's time, run on a Ray cluster through Ray
Data; everything else is the plain import's (:mod:`qa.index.indexer`): this process reads the
files, decides which articles are new, and writes the results into the store in batches of
``batch_passages`` passages, each committed, so that a killed run resumes from its last commit
and the finished run publishes one generation to the search backend as before.

New articles are gathered in windows of ``window_chars`` characters of text; each window is
one Ray Data dataset mapped by ``map_batches`` over a pool of :class:`ChunkEmbed` actors
(one CPU, one thread and one model load each). An actor builds the embedder that this process
would use (the same model and runtime: torch in bf16 or float32, or the int8 ONNX copy, the
runtime the index records as ``embed_runtime``), so its vectors are the plain import's. It
returns only each passage's paragraph and offsets with the vectors; passages are rebuilt here
from the article's own text, so their ids and text are the plain import's by construction.
The order of articles is kept, so near-duplicate clusters come out as they would without Ray.

Ray is imported by this module alone, and only when ``--ray`` is given. Without an address a
local Ray starts on 127.0.0.1 (no dashboard, one CPU per core) and stops at the end of the
run; an address (``HOST:PORT`` of a running cluster's head, or ``ray://HOST:PORT`` for Ray
Client) is first tried with a plain TCP connection, so an unreachable cluster is one line at
once rather than a minute of retries. Every node needs newsqa installed (``pip install
'newsqa[ray]'``) and, for an int8 index, the ONNX copy built (``python -m qa.index``).
"""

from __future__ import annotations

import json
import math
import socket
from collections.abc import Generator, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.errors import ClusterError, ModelLoadError, QAError
from qa.index.chunk import Chunker
from qa.index.embed import EmbedderLike, Vectors
from qa.index.indexer import Indexer, Progress
from qa.index.ray_cluster import line as _line
from qa.index.ray_cluster import start_ray
from qa.index.report import IndexReport
from qa.index.store import Store
from qa.types import Article, Passage, content_id

# ~5,000 news articles a window: a Ray Data dataset (and a model load per actor) each.
WINDOW_CHARS = 16_000_000
ACTOR_BATCH = 16  # articles per actor call: ~250 passages, four forward passes of 64


@dataclass(frozen=True)
class EmbedSpec:
    """Which embedder the actors build: the model name and the runtime of its vectors.

    Attributes:
        model: Model name as the index records it.
        runtime: ``torch-bf16``, ``torch-fp32``, ``onnx-int8`` or ``onnx-fp32``; ``""`` for
            the fast fake embedder of the tests (``hash-N``).
    """

    model: str
    runtime: str

    @classmethod
    def of(cls, embedder: EmbedderLike) -> EmbedSpec:
        """The spec of the embedder this process would use for a plain import."""
        return cls(embedder.name, str(getattr(embedder, "runtime", "")))


def build_embedder(spec: EmbedSpec, threads: int | None = None) -> EmbedderLike:
    """The embedder of ``spec`` on this machine (an actor's).

    Raises:
        ModelLoadError: the ONNX copy that the spec names is not built on this node.
    """
    if spec.runtime.startswith("onnx-"):
        from qa.index.embed_onnx import OnnxEmbedder, find_copy

        precision = spec.runtime.removeprefix("onnx-")
        path = find_copy(precision, spec.model)
        if path is None:
            raise ModelLoadError(
                f"the {precision} ONNX copy of the embedder is not built on Ray node "
                f"{socket.gethostname()}: run `python -m qa.index` there"
            )
        return OnnxEmbedder(path, precision, spec.model, threads=threads, spin=False)
    if spec.runtime.startswith("torch-"):
        from qa.index.embed import Embedder

        return Embedder(spec.model, bf16=spec.runtime == "torch-bf16", threads=threads)
    from qa.index.folder import embedder_named

    return embedder_named(spec.model)


def chunker_settings(chunker: Chunker) -> dict[str, Any]:
    """The settings an actor needs to build the same chunker (its counters load there)."""
    return {
        "max_tokens": chunker.max_tokens,
        "min_tokens": chunker.min_tokens,
        "overlap_sentences": chunker.overlap_sentences,
        "model_max_tokens": chunker.model_max_tokens,
    }


class ChunkEmbed:
    """Ray Data actor: articles -> passage offsets and vectors, one model load per actor.

    Args:
        spec: :class:`EmbedSpec` fields.
        chunker: :func:`chunker_settings` of the importing process's chunker.
        threads: Intra-op threads of the model (one per CPU the actor holds).
    """

    def __init__(self, spec: dict[str, str], chunker: dict[str, Any], threads: int = 1) -> None:
        self.embedder = build_embedder(EmbedSpec(**spec), threads)
        self.chunker = Chunker(**chunker)
        self.embedder.embed(["warm up"])  # load the model now, once per actor

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Chunk and embed a batch of articles (columns ``id``, ``title``, ``text``).

        Returns:
            Columns ``id``, ``spans`` (JSON ``[[paragraph, start, end], ...]``), ``vectors``
            (float32 bytes, one row per passage), ``headline`` (float32 bytes of the title's
            vector, empty when untitled) and ``truncated`` (passages cut by the model).
        """
        ids = [str(i) for i in batch["id"]]
        articles = [
            Article(title=str(t), text=str(x), id=i)
            for i, t, x in zip(ids, batch["title"], batch["text"], strict=True)
        ]
        chunks = [self.chunker.split(a) for a in articles]
        texts = [p.embed_text() for ps in chunks for p in ps]
        before = int(getattr(self.embedder, "truncated", 0))
        vecs = self.embedder.embed(texts) if texts else np.zeros((0, 1), dtype=np.float32)
        cut = int(getattr(self.embedder, "truncated", 0)) - before
        titled = [i for i, a in enumerate(articles) if a.title.strip()]
        head_blobs = [b""] * len(articles)
        if titled:
            heads = self.embedder.embed([articles[i].title.strip() for i in titled])
        for i, v in zip(titled, heads if titled else [], strict=True):
            head_blobs[i] = np.ascontiguousarray(v, dtype=np.float32).tobytes()
        spans, blobs, offset = [], [], 0
        for ps in chunks:
            spans.append(json.dumps([[p.paragraph, p.start, p.end] for p in ps]))
            blobs.append(np.ascontiguousarray(vecs[offset : offset + len(ps)]).tobytes())
            offset += len(ps)
        return {
            "id": np.array(ids, dtype=object),
            "spans": np.array(spans, dtype=object),
            "vectors": np.array(blobs, dtype=object),
            "headline": np.array(head_blobs, dtype=object),
            "truncated": np.array([cut] + [0] * (len(ids) - 1), dtype=np.int64),
        }


def _cause(exc: BaseException) -> BaseException:
    """The error a Ray task raised, under Ray's wrappers."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, QAError):
            return exc
        inner = getattr(exc, "cause", None) or exc.__cause__
        if not isinstance(inner, BaseException):
            break
        exc = inner
    return exc


class RayIndexer(Indexer):
    """An :class:`Indexer` whose chunking and embedding run on a Ray cluster.

    Args:
        root: Index folder.
        embedder: The embedder a plain import would use; the actors build its twin.
        address: Ray cluster address; None for a local Ray on this machine.
        actors: Embedding actors (default: one per CPU of the cluster).
        window_chars: Article text per Ray Data dataset.
        actor_batch: Articles per actor call.
        **kwargs: :class:`Indexer` arguments (``chunker``, ``strict``, ``batch_passages``...).
    """

    def __init__(
        self,
        root: Path,
        embedder: EmbedderLike,
        address: str | None = None,
        actors: int | None = None,
        window_chars: int = WINDOW_CHARS,
        actor_batch: int = ACTOR_BATCH,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, embedder, **kwargs)
        self.address = address
        self.actors = actors
        self.window_chars = window_chars
        self.actor_batch = actor_batch
        self._started: bool | None = None  # None: not connected in this run
        self._heads: dict[str, Vectors] = {}  # headline vectors from Ray, by article id

    def update(
        self,
        paths: Sequence[Path],
        rebuild: bool = False,
        progress: Progress | None = None,
        prune: bool = True,
    ) -> IndexReport:
        """:meth:`Indexer.update`, embedding on Ray (connected at the first new article)."""
        try:
            return super().update(paths, rebuild, progress, prune)
        finally:
            if self._started:
                import ray

                ray.shutdown()
            self._started = None

    def _add_batch(
        self, store: Store, articles: list[Article], target: int, report: IndexReport
    ) -> int:
        unique = self._unique(store, articles, report)
        if not unique:
            return 0
        if self._started is None:
            self._started = start_ray(self.address)
        by_id = {a.id: a for a in unique}
        items: list[tuple[Article, list[Passage], Vectors]] = []
        done = pending = 0
        # Closed on any error, so that the dataset's actors stop before the error travels on.
        with closing(self._embedded(unique)) as embedded:
            for aid, spans, vecs, cut in embedded:
                article = by_id[aid]
                items.append((article, [_passage(article, *s) for s in spans], vecs))
                report.truncated += cut
                pending += len(spans)
                done += 1
                if pending >= self.batch_passages:
                    self._flush(store, items, target, report)
                    items, pending = [], 0
        self._flush(store, items, target, report)
        if done != len(unique):
            raise ClusterError(f"the Ray cluster returned {done} of {len(unique)} articles")
        return len(unique)

    def _flush(
        self,
        store: Store,
        items: list[tuple[Article, list[Passage], Vectors]],
        target: int,
        report: IndexReport,
    ) -> None:
        """Write embedded articles; passages the store already holds keep their vector."""
        if not items:
            return
        chunks = [ps for _, ps, _ in items]
        vecs = np.concatenate([v for *_, v in items]).astype(np.float32, copy=False)
        hashes = [content_id(self.embedder.name, p.embed_text()) for ps in chunks for p in ps]
        cached = store.cached_vectors(hashes)
        for i, h in enumerate(hashes):
            if h in cached:
                vecs[i] = cached[h]
        hits = sum(h in cached for h in hashes)
        report.passages_reused += hits
        report.passages_embedded += len(hashes) - hits
        heads = [self._heads.pop(a.id, None) for a, _, _ in items]
        self._write(store, [a for a, _, _ in items], chunks, vecs, hashes, target, report, heads)

    def _embedded(
        self, articles: list[Article]
    ) -> Generator[tuple[str, list[Any], Vectors, int], None, None]:
        """(article id, spans, vectors, truncated) of each article, in order, from Ray."""
        import ray

        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # the plain import's order
        ctx.enable_progress_bars = False
        rows = [{"id": a.id, "title": a.title, "text": a.text} for a in articles]
        cpus = ray.cluster_resources().get("CPU", 1)  # type: ignore[no-untyped-call]
        actors = self.actors or max(1, int(cpus))
        ds = ray.data.from_items(
            rows, override_num_blocks=max(1, math.ceil(len(rows) / self.actor_batch))
        ).map_batches(
            ChunkEmbed,
            fn_constructor_kwargs={
                "spec": asdict(EmbedSpec.of(self.embedder)),
                "chunker": chunker_settings(self.chunker),
            },
            batch_size=self.actor_batch,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=1,
        )
        dim = self.embedder.dim
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                for aid, spans, blob, head, cut in zip(
                    batch["id"],
                    batch["spans"],
                    batch["vectors"],
                    batch["headline"],
                    batch["truncated"],
                    strict=True,
                ):
                    vecs = np.frombuffer(blob, dtype=np.float32).reshape(-1, dim).copy()
                    if head:  # the title's vector, for _flush
                        self._heads[str(aid)] = np.frombuffer(head, dtype=np.float32).copy()
                    yield str(aid), json.loads(spans), vecs, int(cut)
        except QAError:
            raise
        except Exception as exc:  # Ray wraps what its tasks raise in its own types
            cause = _cause(exc)
            if isinstance(cause, QAError):
                raise cause from exc
            raise ClusterError(f"the Ray import failed: {_line(cause)}") from exc


def _passage(article: Article, paragraph: int, start: int, end: int) -> Passage:
    """A passage as the chunker makes it, from offsets into the article's own text."""
    text = article.text[start:end]
    return Passage(
        id=content_id(article.id, str(start), text),
        article_id=article.id,
        paragraph=paragraph,
        start=start,
        end=end,
        text=text,
        title=article.title,
    )
