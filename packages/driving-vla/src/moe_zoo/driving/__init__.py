"""DriveMoE: vision MoE over cameras and action MoE over driving skills for an end-to-end driving VLA, in closed loop. (work in progress)."""
