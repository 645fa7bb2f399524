"""Development tools: the throwaway PostgreSQL of the demo, the tests and the benchmarks."""
