"""Scheduling: execution order, tensor lifetimes, in-place execution, patch stages and arena placement."""

from tinyml.schedule.patch import plan_for_budget, smallest_plan
from tinyml.schedule.plan import Buffer, InPlace, OpFacts, PatchStage, PatchWindow, Plan, plan_memory

__all__ = ["Buffer", "InPlace", "OpFacts", "PatchStage", "PatchWindow", "Plan", "plan_memory", "plan_for_budget",
           "smallest_plan"]
