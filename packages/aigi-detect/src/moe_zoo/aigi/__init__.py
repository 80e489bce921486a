"""OmniAID: decoupled semantic experts and a universal artifact expert for AI-generated image detection. (work in progress)."""
