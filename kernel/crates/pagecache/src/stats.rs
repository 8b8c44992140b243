//! Page-cache statistics and the invariants that tie them together.

/// Counters since the page cache was created.
///
/// # Invariants (checked by [`Stats::check`] and the tests)
///
/// * `misses == demand_reads + cc_demand_restores`: every miss is served by
///   exactly one device read or one cleancache restore.
/// * `pages_read == demand_reads + ra_pages_read`: device page reads are
///   demand reads or readahead.
/// * `ra_pages_read + cc_ra_restores == ra_used + ra_wasted + ra_pending`,
///   where `ra_pending` ([`crate::PageCache::readahead_pending`]) counts
///   readahead pages still cached and not used yet. A readahead page is
///   *used* when first looked up, *wasted* when it leaves unused.
/// * `evictions == cc_puts`: every page that leaves by eviction is clean and
///   offered to cleancache (truncation, deletion and I/O errors are not
///   evictions: `truncated_pages`, `error_drops`, nor are clean pages
///   dropped for CMA: `migrate_drops`).
/// * Pages in minus pages out is what is cached:
///   `pages_read + cc_demand_restores + cc_ra_restores + new_pages`
///   `- evictions - truncated_pages - error_drops - migrate_drops ==`
///   cached pages.
/// * Device counters: once no request is in flight, the device's sectors
///   read equal `sectors_read` plus the filesystem's metadata and direct
///   sectors read (`fat32::FsStats`); the same holds for writes.
///   `sectors_read`/`sectors_written` count data sectors of requests
///   submitted by the page cache (readahead included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Page lookups (reads, and writes that need the old content) that found
    /// the page cached and valid.
    pub hits: u64,
    /// Page lookups that did not.
    pub misses: u64,
    /// Misses served by reading the device.
    pub demand_reads: u64,
    /// Misses served by a cleancache copy (no device read).
    pub cc_demand_restores: u64,
    /// Readahead pages served by a cleancache copy.
    pub cc_ra_restores: u64,
    /// `get_page` calls that found nothing.
    pub cc_get_misses: u64,
    /// Pages read from the device (demand + readahead).
    pub pages_read: u64,
    /// Readahead pages read from the device.
    pub ra_pages_read: u64,
    /// Readahead pages looked up before they left.
    pub ra_used: u64,
    /// Readahead pages that left without being looked up.
    pub ra_wasted: u64,
    /// Data sectors read from the device.
    pub sectors_read: u64,
    /// Data sectors written to the device.
    pub sectors_written: u64,
    /// Pages written back.
    pub pages_written: u64,
    /// Pages created without reading (past end of file, or fully
    /// overwritten).
    pub new_pages: u64,
    /// Pages evicted (clean, offered to cleancache).
    pub evictions: u64,
    /// `put_page` calls.
    pub cc_puts: u64,
    /// Dirty pages written back because reclaim found them.
    pub reclaim_writebacks: u64,
    /// Pages reclaim looked at to find a victim (Linux's pgscan): the one
    /// evicted and every busy or dirty page passed over on the way. A page
    /// passed over moves to the young end of its list, so with `b` busy pages
    /// among `n` cached, an eviction looks at about `1 + b / (n - b)` pages.
    pub reclaim_scanned: u64,
    /// Pages dropped by truncate or delete (never offered to cleancache).
    pub truncated_pages: u64,
    /// Pages dropped because their read failed.
    pub error_drops: u64,
    /// Failed read requests.
    pub read_errors: u64,
    /// Failed write requests.
    pub write_errors: u64,
    /// Pages migrated to another frame.
    pub migrations: u64,
    /// Migrations refused because the page was busy.
    pub migrate_busy: u64,
    /// Clean pages dropped for CMA instead of migrated
    /// ([`crate::PageCache::drop_clean_frame`]; never offered to cleancache).
    pub migrate_drops: u64,
}

impl Stats {
    /// Checks the invariants that need no outside numbers; `cached` is the
    /// number of pages cached and `ra_pending` the readahead pages not yet
    /// used.
    pub fn check(&self, cached: u64, ra_pending: u64) -> Result<(), &'static str> {
        if self.misses != self.demand_reads + self.cc_demand_restores {
            return Err("misses != demand_reads + cc_demand_restores");
        }
        if self.pages_read != self.demand_reads + self.ra_pages_read {
            return Err("pages_read != demand_reads + ra_pages_read");
        }
        if self.ra_pages_read + self.cc_ra_restores != self.ra_used + self.ra_wasted + ra_pending {
            return Err("readahead pages != used + wasted + pending");
        }
        if self.evictions != self.cc_puts {
            return Err("evictions != cc_puts");
        }
        let added =
            self.pages_read + self.cc_demand_restores + self.cc_ra_restores + self.new_pages;
        let removed = self.evictions + self.truncated_pages + self.error_drops + self.migrate_drops;
        if added.checked_sub(removed) != Some(cached) {
            return Err("pages in - pages out != pages cached");
        }
        Ok(())
    }
}
