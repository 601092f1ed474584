"""The extension API: directives, roles, their options and the contexts they see.

Third-party directives import from here only (`from circuitpress.extensions import Directive`).
"""

from circuitpress.extensions.api import (
    Directive,
    DirectiveCall,
    FollowUpContext,
    PendingResult,
    PlanContext,
    PlanRecorder,
    RenderContext,
    RenderServices,
    ResultSource,
    Role,
)
from circuitpress.extensions.options import Option, choice, flag, integer, label, number, text
from circuitpress.extensions.registry import ENTRY_POINT_GROUP, Registry, default_registry

__all__ = [
    "ENTRY_POINT_GROUP",
    "Directive",
    "DirectiveCall",
    "FollowUpContext",
    "Option",
    "PendingResult",
    "PlanContext",
    "PlanRecorder",
    "Registry",
    "RenderContext",
    "RenderServices",
    "ResultSource",
    "Role",
    "choice",
    "default_registry",
    "flag",
    "integer",
    "label",
    "number",
    "text",
]
