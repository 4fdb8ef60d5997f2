"""The rules engine: Facts in, Decision out. Pure, no I/O.

router = compile_router(cfg)          # once, at config load
decision = router.route(Facts.from_inbound(inbound, customer, ticket, outside_hours))
print(explain(decision))
"""

from router.compile import compile_router
from router.explain import explain
from router.facts import Facts
from router.match import Router

__all__ = ["Facts", "Router", "compile_router", "explain"]
