"""Reinforcement learning on the twin: the gymnasium environment (training lives in ``twin.app.train``)."""

from twin.rl.env import RewardWeights, TwinEnv, window_scenario

__all__ = ["RewardWeights", "TwinEnv", "window_scenario"]
