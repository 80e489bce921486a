"""HoME: hierarchy of multi-gate experts for multi-task recommendation, with MMoE/PLE baselines."""
