"""pytest plugin for tools/mutants.py: the hypothesis profile "mutants" (no shrinking).

Loaded with ``-p mutants_profile`` before tests/conftest.py, which then loads the profile
named by HYPOTHESIS_PROFILE. A mutant is killed by its first failing example; shrinking
that example to a minimal one would only cost time. Otherwise as the "ci" profile.
"""
from hypothesis import HealthCheck, Phase, settings

settings.register_profile(
    "mutants",
    deadline=None,
    database=None,
    print_blob=False,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)
