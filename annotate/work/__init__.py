"""The work machinery shared by every kind of expert work (docs/work.md).

- `kinds`: what a kind supplies (its content: parse, store, snapshot) and the registry
  from a campaign's kind to it; grading (annotate/grading.py) and review
  (annotate/review.py) are the two kinds.
- `queue`: claiming the next item, leases, skips.
- `drafts`: autosave of work in progress, newest wins, never a stale tab's.
- `commit`: submitting work (idempotent by submission key) and editing it (409 on a stale
  version), with history.
- `visibility`: the blind rules: who may see others' work on an item, and when.

Views, the API and consumers check access with `annotate.access`, then call these.
"""
