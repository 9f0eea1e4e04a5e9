//! DNS checks through the system resolver (`getaddrinfo` via tokio's `lookup_host`), so what is
//! checked is what this host's programs would get, `/etc/hosts` included. The resolver is asked
//! for any address family and the answers are filtered by the requested record type; there is
//! no way to pick a DNS server or to see TTLs this way.

use super::{Clock, Failure, Phase};

/// Resolves `name` and succeeds when at least one address of the `record` family (`A` or
/// `AAAA`, any case) comes back.
pub(super) async fn probe(name: &str, record: &str, clock: &mut Clock) -> Result<(), Failure> {
    let want_v6 = if record.eq_ignore_ascii_case("A") {
        false
    } else if record.eq_ignore_ascii_case("AAAA") {
        true
    } else {
        return Err(Failure::Config(format!(
            "record type `{record}` (A or AAAA)"
        )));
    };
    let addrs = clock
        .step(Phase::Dns, tokio::net::lookup_host((name, 0)))
        .await?
        .map_err(|e| Failure::Dns(format!("{name}: {e}")))?;
    let mut found = false;
    for addr in addrs {
        found |= addr.is_ipv6() == want_v6;
    }
    if found {
        Ok(())
    } else {
        Err(Failure::Dns(format!(
            "{name}: no {} address",
            record.to_ascii_uppercase()
        )))
    }
}
