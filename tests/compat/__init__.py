"""Differential tests: programs written for Sergeant 0.27's public API, run under 0.27 and under ours."""
