"""Stable identities: question ids from (task, doc_hash) and hash-based 80/10/10 splits from question ids."""

from __future__ import annotations

import hashlib

import polars as pl

SPLIT_BUCKETS = {"train": range(0, 8), "val": range(8, 9), "test": range(9, 10)}


def question_id(task: str, doc_hash: str) -> str:
    """Return the stable id of a question: sha256 of 'task/doc_hash', 24 hex digits."""
    return hashlib.sha256(f"{task}/{doc_hash}".encode()).hexdigest()[:24]


def split_of(qid: str) -> str:
    """Return train / val / test for a question id (80/10/10 by its last 6 hex digits; never moves)."""
    bucket = int(qid[-6:], 16) % 10
    return "train" if bucket < 8 else ("val" if bucket == 8 else "test")


def split_expr(col: str = "question_id") -> pl.Expr:
    """Return a polars expression computing split_of() for a column of question ids."""
    bucket = pl.col(col).str.slice(-6).str.to_integer(base=16) % 10
    return (
        pl.when(bucket < 8).then(pl.lit("train")).when(bucket == 8).then(pl.lit("val")).otherwise(pl.lit("test"))
    )
