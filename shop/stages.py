"""The order's state machine: it moves only forward along the stages, or to an exit."""

MAIN_PATH = ("placed", "reserved", "packed", "dispatched", "delivered")
EXITS = {"rejected": {"placed"}, "cancelled": {"placed", "reserved", "packed"}}
STAGES = MAIN_PATH + tuple(EXITS)
CANCELLABLE = EXITS["cancelled"]
# Not stages: the cancel protocol's steps, recorded in an order's history while its stage stays where it is.
CANCEL_REQUESTED = "cancel_requested"
CANCEL_REFUSED = "cancel_refused"
NOTES = (CANCEL_REQUESTED, CANCEL_REFUSED)


def path_to(current: str, target: str) -> list[str]:
    """The stages to record to get from `current` to `target`, or [] when that move is not legal.

    Events travel on different topics, so `packed` may reach the shop before `reserved`; a forward jump
    records the stages it implies, and the late event then finds nothing to do.
    """
    if target in EXITS:
        return [target] if current in EXITS[target] else []
    if current not in MAIN_PATH or target not in MAIN_PATH:
        return []
    here, there = MAIN_PATH.index(current), MAIN_PATH.index(target)
    return list(MAIN_PATH[here + 1 : there + 1])
