"""Cost: token estimates before a batch, the bill and the failures after it (docs/cost.md).

- `tokens.count_tokens(text, model) -> (n, method)`: exact with a bundled local tokenizer, else a heuristic;
- `prices.price_table(profile) -> PriceTable`: built-in prices with the profile's overrides;
- `price_config`: `set_price`, `remove_price`, `list_prices`, the use cases of `profile price`;
- `estimate.estimate_file(path, endpoint=, model_override=, prices=) -> Estimate`, `check_max_cost`,
  `confirmation_question`;
- `usage.summarize_results(paths) -> Usage`, `usage.usage_from_batch(batch)`;
- `failures.summarize_failures(paths) -> FailureSummary`;
- `bill`: the use cases that put them together for `batchctl usage`, `download` and `status`;
  `Bill.totals()` is what `download` records in the journal for `batchctl jobs`.

Nothing here imports the CLI, and nothing is downloaded to count tokens.
"""
