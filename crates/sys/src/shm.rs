//! System V shared memory (shmget, shmctl, shmat, shmdt): finding or creating a segment by key,
//! its size, removing it, and an attached segment read and written field by field with volatile
//! accesses, since another process writes it at any moment. What the fields mean (gpsd's NTP SHM
//! protocol) is the refclock crate's business.

use std::fmt;
use std::io;
use std::ptr::NonNull;

/// Whether [`get`] may create the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// Only find an existing segment (ENOENT when there is none).
    Never,
    /// Create it with these permission bits when there is none.
    IfMissing(u32),
    /// Create it with these permission bits, failing (EEXIST) when one exists.
    Exclusive(u32),
}

/// The id of a segment (what shmget returns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SegmentId(libc::c_int);

impl SegmentId {
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// The segment's size in bytes (shmctl IPC_STAT).
    pub fn size(self) -> io::Result<usize> {
        // SAFETY: shmid_ds is plain data; all-zero is a valid value for IPC_STAT to overwrite.
        let mut status: libc::shmid_ds = unsafe { std::mem::zeroed() };
        // SAFETY: `status` is a live shmid_ds to write to.
        if unsafe { libc::shmctl(self.0, libc::IPC_STAT, &mut status) } == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(status.shm_segsz as usize)
    }

    /// Marks the segment for removal (shmctl IPC_RMID): it goes once every process detaches.
    pub fn remove(self) -> io::Result<()> {
        // SAFETY: IPC_RMID ignores the buffer argument.
        if unsafe { libc::shmctl(self.0, libc::IPC_RMID, std::ptr::null_mut()) } == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// shmget: the segment at `key`, created with `size` bytes if `create` says so and it is missing
/// (`size` 0 finds a segment of any size).
pub fn get(key: i32, size: usize, create: Create) -> io::Result<SegmentId> {
    let flags = match create {
        Create::Never => 0,
        Create::IfMissing(mode) => libc::IPC_CREAT | (mode & 0o777) as libc::c_int,
        Create::Exclusive(mode) => libc::IPC_CREAT | libc::IPC_EXCL | (mode & 0o777) as libc::c_int,
    };
    // SAFETY: shmget has no memory arguments.
    let id = unsafe { libc::shmget(key, size, flags) };
    if id == -1 { Err(io::Error::last_os_error()) } else { Ok(SegmentId(id)) }
}

/// A segment attached read-write to this process (shmat); detached on drop.
///
/// Every access is bounds-checked against the segment's size and alignment-checked, and panics on
/// a violation: offsets are the caller's constants, so one that is off is a bug.
pub struct Attached {
    id: SegmentId,
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping belongs to the process, not to a thread; `Attached` only hands out copies
// of what it reads (through `&self`) and writes through `&mut self`.
unsafe impl Send for Attached {}

impl Attached {
    /// Attaches segment `id` read-write at an address the kernel chooses.
    pub fn attach(id: SegmentId) -> io::Result<Self> {
        let len = id.size()?;
        // SAFETY: a null address lets the kernel choose where to map; flags 0 maps read-write.
        // No memory of ours is touched.
        let address = unsafe { libc::shmat(id.0, std::ptr::null(), 0) };
        if address as isize == -1 {
            return Err(io::Error::last_os_error());
        }
        let Some(base) = NonNull::new(address.cast::<u8>()) else {
            return Err(io::Error::other("shmat mapped the segment at address 0"));
        };
        Ok(Self { id, base, len })
    }

    pub fn id(&self) -> SegmentId {
        self.id
    }

    /// The segment's size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The address of a `T` at `offset`, inside the segment and aligned for `T`.
    fn field<T>(&self, offset: usize) -> *mut T {
        assert!(
            offset.checked_add(size_of::<T>()).is_some_and(|end| end <= self.len),
            "offset {offset} outside the {}-byte segment",
            self.len
        );
        // shmat maps whole pages, so the base is page-aligned and an offset aligned for `T` is too.
        assert_eq!(offset % align_of::<T>(), 0, "offset {offset} misaligned");
        self.base.as_ptr().wrapping_add(offset).cast()
    }

    pub fn load_i32(&self, offset: usize) -> i32 {
        // SAFETY: inside the mapping (checked by `field`), which lives as long as `self`, and
        // aligned; a volatile read of memory another process may change.
        unsafe { self.field::<i32>(offset).read_volatile() }
    }

    pub fn load_u32(&self, offset: usize) -> u32 {
        // SAFETY: as for `load_i32`.
        unsafe { self.field::<u32>(offset).read_volatile() }
    }

    pub fn load_i64(&self, offset: usize) -> i64 {
        // SAFETY: as for `load_i32`.
        unsafe { self.field::<i64>(offset).read_volatile() }
    }

    pub fn store_i32(&mut self, offset: usize, value: i32) {
        // SAFETY: as for `load_i32`; the mapping is writable (attached read-write).
        unsafe { self.field::<i32>(offset).write_volatile(value) }
    }

    pub fn store_u32(&mut self, offset: usize, value: u32) {
        // SAFETY: as for `store_i32`.
        unsafe { self.field::<u32>(offset).write_volatile(value) }
    }

    pub fn store_i64(&mut self, offset: usize, value: i64) {
        // SAFETY: as for `store_i32`.
        unsafe { self.field::<i64>(offset).write_volatile(value) }
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        // SAFETY: the address came from shmat and no reference into the mapping outlives `self`.
        unsafe { libc::shmdt(self.base.as_ptr().cast()) };
    }
}

impl fmt::Debug for Attached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attached").field("id", &self.id.0).field("len", &self.len).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key of this process's own, outside ntpd's range (0x4E545030 onwards).
    fn test_key(index: i32) -> i32 {
        0x5358_0000 | ((std::process::id() as i32 & 0x0fff) << 4) | (index & 0x0f)
    }

    /// Removes a test segment when dropped.
    struct Remove(SegmentId);

    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = self.0.remove();
        }
    }

    #[test]
    fn a_segment_is_created_found_attached_and_shared() {
        let key = test_key(0);
        assert_eq!(get(key, 0, Create::Never).unwrap_err().kind(), io::ErrorKind::NotFound);
        let id = get(key, 96, Create::Exclusive(0o600)).unwrap();
        let _remove = Remove(id);
        assert_eq!(get(key, 0, Create::Never).unwrap(), id);
        assert_eq!(get(key, 96, Create::IfMissing(0o600)).unwrap(), id);
        assert!(get(key, 96, Create::Exclusive(0o600)).is_err());
        assert_eq!(id.size().unwrap(), 96);
        let mut writer = Attached::attach(id).unwrap();
        let reader = Attached::attach(id).unwrap();
        assert_eq!((reader.len(), reader.load_i32(4)), (96, 0), "new segments are zeroed");
        writer.store_i32(4, -7);
        writer.store_u32(8, u32::MAX);
        writer.store_i64(88, i64::MIN);
        assert_eq!(
            (reader.load_i32(4), reader.load_u32(8), reader.load_i64(88)),
            (-7, u32::MAX, i64::MIN)
        );
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn an_access_past_the_end_panics() {
        let id = get(test_key(1), 80, Create::Exclusive(0o600)).unwrap();
        let _remove = Remove(id);
        Attached::attach(id).unwrap().load_i64(76);
    }

    #[test]
    #[should_panic(expected = "misaligned")]
    fn a_misaligned_access_panics() {
        let id = get(test_key(2), 80, Create::Exclusive(0o600)).unwrap();
        let _remove = Remove(id);
        Attached::attach(id).unwrap().load_i32(2);
    }
}
