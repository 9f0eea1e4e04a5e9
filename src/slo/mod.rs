//! The SLO engine: exact good/total counts in tiered time buckets, SLIs, error budgets, burn
//! rates and alert tiers. Pure logic: no I/O, no clock, no async.
