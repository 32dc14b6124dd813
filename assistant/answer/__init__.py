"""Answering a question, one module per stage, each over frozen records:

    scope.py     question -> Scope (states named and missing, per-state or not, intent, terms)
    retrieve.py  Scope -> Hits (ranked passages per group, with the question's signals)
    evidence.py  Hits -> Evidence (quotable sentences scored from stored vectors; decision features)
    decision.py  Evidence -> Decision (answer, or the topic the plans do not address)
    compose.py   Evidence + Decisions -> Answer (extractive, every sentence quoted and cited)
    generate.py  the same through a language model, verified sentence by sentence

`assistant.api.Assistant.ask` calls them once each, in this order.
"""
