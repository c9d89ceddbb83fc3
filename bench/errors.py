"""Errors a user can cause. The CLI prints their message (no traceback) and exits with 2."""


class TunewiseError(Exception):
    """A problem the user can fix: bad file, wrong column, unknown name, missing model."""

    exit_code = 2


def out_of_gpu_memory(exc: BaseException) -> str | None:
    """What to tell the user when `exc` is, or was caused by, PyTorch's CUDA out-of-memory
    error (a trainer may wrap it in a StrategyError); None for any other error. PyTorch's own
    text is one long line of allocator details; its first sentence says how much was asked."""
    seen: BaseException | None = exc
    while seen is not None:
        text = str(seen)
        if type(seen).__name__ == "OutOfMemoryError" or "CUDA out of memory" in text:
            asked = next((part.strip() for part in text.split(". ")
                          if part.strip().startswith("Tried to allocate")), "")
            return ("out of GPU memory" + (f" ({asked.rstrip('.')})" if asked else "")
                    + ": try a smaller batch (--set batch_size=4, with --set grad_accum=2 to keep "
                    "the effective batch), --set gradient_checkpointing=true, a shorter "
                    "--set max_length, or qlora; `tunewise estimate` shows what each needs")
        seen = seen.__cause__ or seen.__context__
    return None
