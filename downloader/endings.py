"""How a job ends: its final state and the one sentence the user reads."""

from __future__ import annotations

import logging

from db.models import Account, Job
from db.patience import describe, lost_mid_job
from downloader.errors import BudgetExhausted, Checkpoint, DownloadError, RateLimited, Transient
from downloader.events import PhaseResult
from downloader.leases import Holder

log = logging.getLogger("downloader.service")  # these lines were always the service's
# Errors after which the remaining phases would only repeat the same failure.
FATAL = (Checkpoint, RateLimited, BudgetExhausted)


def crashed(job: Job, exc: Exception) -> tuple[str, str]:
    """The end of a job that raised: a lost database connection leaves it resumable."""
    if lost_mid_job(exc):
        sentence = f"The connection to the database was lost ({describe(exc)})."
        log.warning("job %s stops: %s", job.id, sentence)
        return "interrupted", f"{sentence} The download stopped and can be resumed."
    log.exception("job %s crashed", job.id)
    return "failed", f"Unexpected error ({type(exc).__name__}); details are in the log."


def job_ending(exc: DownloadError, *, first: bool) -> tuple[str, str] | None:
    """How a failure ends the job: (state, sentence), or None when later phases may still run."""
    if isinstance(exc, Transient):
        # The network went away: keep the job resumable, never "failed".
        return "interrupted", f"{exc.sentence} The download stopped and can be resumed."
    if isinstance(exc, FATAL) or first:
        return "failed", exc.sentence
    return None


def busy_sentence(account: Account, holder: Holder) -> str:
    """Why an account cannot be downloaded right now."""
    return (
        f"@{account.username} is being downloaded by {holder.describe()}; "
        "try again when that download has finished."
    )


def phase_problems(results: list[PhaseResult]) -> str | None:
    """One line naming the phases that failed, for the account's "last problem"."""
    problems = [f"{r.phase}: {r.message}" for r in results if r.status == "failed"]
    return "; ".join(problems) or None
