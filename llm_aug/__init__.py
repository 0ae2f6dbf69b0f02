"""llm-aug: LLM-driven data augmentation and prompting for suicide-risk classification."""

__version__ = "0.1.0"
