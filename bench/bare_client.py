"""The floor for ``llm-aug classify``: a bare aiohttp client sending the same request bodies.

No llm_aug import, no cache, no retries, no parsing: read the bodies, keep ``concurrency``
requests in flight on one pooled session, write each reply's text as one JSON line.
``bench/runner_throughput.py`` times it end to end (interpreter start included) beside
the CLI on the same bodies.

Usage: ``python bench/bare_client.py REQUESTS.jsonl BASE_URL CONCURRENCY OUT.jsonl``
(REQUESTS: OpenAI Batch API lines, as ``llm-aug classify --batch export`` writes them).
"""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp


async def _send(bodies: list[dict], url: str, concurrency: int) -> list[str]:
    replies: list[str] = [""] * len(bodies)
    pending = iter(range(len(bodies)))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker() -> None:
            for i in pending:
                async with session.post(url, json=bodies[i]) as response:
                    response.raise_for_status()
                    replies[i] = (await response.json())["choices"][0]["message"]["content"]
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return replies


def main() -> None:
    requests, base_url, concurrency, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    with open(requests, encoding="utf-8") as fh:
        lines = [json.loads(line) for line in fh if line.strip()]
    replies = asyncio.run(_send([line["body"] for line in lines],
                                base_url.rstrip("/") + "/chat/completions", concurrency))
    with open(out, "w", encoding="utf-8") as fh:
        for line, reply in zip(lines, replies):
            fh.write(json.dumps({"id": line["custom_id"], "raw": reply}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
