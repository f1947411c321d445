"""The ``docs/inference.md`` example with the stock ``openai`` client runs as written against a
real gateway app (an echo model stands in for the LLM), and ``default`` names the model."""

from __future__ import annotations

import re
from pathlib import Path

from veilnet.testing.gateway import dev_gateway

DOC = Path(__file__).resolve().parents[2] / "docs" / "inference.md"


def test_the_openai_client_example_runs_as_documented(capsys: object) -> None:
    (code,) = re.findall(r"^```python\n(.*?)^```", DOC.read_text(), flags=re.M | re.S)
    with dev_gateway(b"veilnet-inference-docs-seed-0000") as url:
        namespace: dict[str, object] = {}
        exec(code.replace("http://127.0.0.1:8600", url), namespace)
        answer, receipt_id = namespace["answer"], namespace["receipt_id"]
    assert answer.id == receipt_id and str(receipt_id).startswith("chatcmpl-")  # type: ignore[attr-defined]
    assert answer.choices[0].message.content == "echo: Hello"  # type: ignore[attr-defined]
