"""LLM insight: explain a node's rule-based findings with Groq or an OpenAI-compatible endpoint.

Entry points: `settings.load_llm_settings`, `service.build_insight_service`,
`service.InsightService.explain` / `explain_each` / `due`; the simulator for
tests is `testing_server`. See docs/llm.md.
"""
