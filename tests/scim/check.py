"""Runs scim2-tester against a live Steward: python check.py BASE_URL TOKEN.

Every check must end SUCCESS, COMPLIANT, ACCEPTABLE or SKIPPED; an ERROR or a CRITICAL fails
the run. Deviations from a SHOULD are printed, and do not fail it.
"""

import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

FAILING = {Status.ERROR, Status.CRITICAL}


def main(base: str, token: str) -> int:
    http = Client(base_url=f"{base}/scim/v2", headers={"Authorization": f"Bearer {token}"})
    results = check_server(SyncSCIMClient(http))
    for r in results:
        where = f"[{r.resource_type}] " if r.resource_type else ""
        line = f"{r.status.name:<10} {where}{r.title}"
        if r.status in FAILING or r.status == Status.DEVIATION:
            line += f": {r.reason}"
        print(line)
    failed = [r for r in results if r.status in FAILING]
    print(f"\nscim2-tester: {len(results)} checks, {len(failed)} failed")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
