"""Scheduling: execution order, tensor lifetimes and arena placement."""

from tinyml.schedule.plan import Buffer, Plan, plan_memory

__all__ = ["Buffer", "Plan", "plan_memory"]
