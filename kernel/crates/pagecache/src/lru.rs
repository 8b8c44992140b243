//! The active/inactive LRU, as Linux's: first access sets REFERENCED, a
//! second moves the page to the active list; `balance` keeps
//! `active <= inactive` by moving the oldest active pages to the inactive
//! list (clearing REFERENCED).

use alloc::collections::BTreeMap;

use blkdev::BlockDevice;

use blkdev::QueueMux;

use crate::filesystem::Filesystem;
use crate::{CleancacheHooks, Key, PageAllocator, PageCache, PageFlags, PageStateStore};

impl<D, E, S, F> PageCache<D, E, S, F>
where
    D: BlockDevice,
    E: PageAllocator + CleancacheHooks,
    S: PageStateStore,
    F: Filesystem<Device = QueueMux<D>>,
{
    fn next_stamp(&mut self) -> u64 {
        self.stamp += 1;
        self.stamp
    }

    pub(crate) fn lru_remove(&mut self, key: Key) {
        if let Some(p) = self.pages.get(&key) {
            if self.states.flags(p.frame).contains(PageFlags::ACTIVE) {
                self.active.remove(&p.stamp);
            } else {
                self.inactive.remove(&p.stamp);
            }
        }
    }

    pub(crate) fn lru_add(&mut self, key: Key, active: bool) {
        let stamp = self.next_stamp();
        if let Some(p) = self.pages.get_mut(&key) {
            p.stamp = stamp;
            if active {
                self.states.set_flags(p.frame, PageFlags::ACTIVE);
                self.active.insert(stamp, key);
            } else {
                self.states.clear_flags(p.frame, PageFlags::ACTIVE);
                self.inactive.insert(stamp, key);
            }
        }
    }

    /// The active or the inactive list (stamp, oldest first, to page).
    pub(crate) fn lru_list(&self, active: bool) -> &BTreeMap<u64, Key> {
        if active { &self.active } else { &self.inactive }
    }

    /// Moves page `key`, at `stamp` on the active or inactive list, to the
    /// young end of the same list; its flags stay as they are.
    pub(crate) fn lru_rotate(&mut self, active: bool, stamp: u64, key: Key) {
        let new = self.next_stamp();
        let list = if active {
            &mut self.active
        } else {
            &mut self.inactive
        };
        list.remove(&stamp);
        list.insert(new, key);
        if let Some(p) = self.pages.get_mut(&key) {
            p.stamp = new;
        }
    }

    pub(crate) fn mark_accessed(&mut self, key: Key) {
        let Some(p) = self.pages.get(&key) else {
            return;
        };
        let f = p.frame;
        let flags = self.states.flags(f);
        if !flags.contains(PageFlags::REFERENCED) {
            self.states.set_flags(f, PageFlags::REFERENCED);
        } else if !flags.contains(PageFlags::ACTIVE) {
            self.lru_remove(key);
            self.states.clear_flags(f, PageFlags::REFERENCED);
            self.lru_add(key, true);
        }
    }

    /// Keeps the active list no longer than the inactive one.
    pub(crate) fn balance(&mut self) {
        while self.active.len() > self.inactive.len() {
            let Some((_, key)) = self.active.pop_first() else {
                break;
            };
            if let Some(p) = self.pages.get(&key) {
                self.states
                    .clear_flags(p.frame, PageFlags::ACTIVE | PageFlags::REFERENCED);
            }
            let stamp = self.next_stamp();
            if let Some(p) = self.pages.get_mut(&key) {
                p.stamp = stamp;
            }
            self.inactive.insert(stamp, key);
        }
    }
}
