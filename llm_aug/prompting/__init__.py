"""Prompting: versioned templates, reply parsing, few-shot exemplars and answer voting."""

from llm_aug.prompting.exemplars import (
    ExemplarSelector,
    fit_to_budget,
    select_exemplars,
)
from llm_aug.prompting.parse import ParseResult, parse_label, parse_post_list
from llm_aug.prompting.templates import Prompt, PromptInfo, list_prompts, load_prompt
from llm_aug.prompting.vote import score_from_logprobs, vote

__all__ = [
    "ExemplarSelector", "ParseResult", "Prompt", "PromptInfo", "fit_to_budget", "list_prompts",
    "load_prompt", "parse_label", "parse_post_list", "score_from_logprobs", "select_exemplars", "vote",
]
