use crate::map_error_code;

use std::io;
use std::mem::ManuallyDrop;
use std::sync::{Mutex, MutexGuard, PoisonError};
use zstd_safe;

// trailhouse patch: dropped compressors leave their context, reset, to the next ones
// created. parquet-rs gives every column chunk it writes a new compressor; creating a
// context asks the CPU for its features (`cpuid`), which in a virtual machine traps to
// the hypervisor, and costs an allocation besides.

/// Contexts of dropped compressors, reset.
static POOL: Mutex<Vec<zstd_safe::CCtx<'static>>> = Mutex::new(Vec::new());

/// The most contexts the process keeps for reuse: parquet-rs has one alive for each
/// compressed column of a row group it writes, and threads write at once.
pub const POOL_CONTEXTS: usize = 128;

/// A context larger than this is freed, not kept. Its tables grow with the largest
/// input it compressed (at level 3 to 57 KiB for 2 KiB, 277 KiB for 16 KiB, 1.2 MiB
/// for 1 MiB), and most of the chunks parquet-rs compresses are short; the pool then
/// holds at most 128 × 64 KiB = 8 MiB.
pub const POOL_CONTEXT_BYTES: usize = 64 << 10;

fn pool() -> MutexGuard<'static, Vec<zstd_safe::CCtx<'static>>> {
    // The pool stays consistent whatever panicked while it was held.
    POOL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The number of contexts kept for reuse.
pub fn pooled_contexts() -> usize {
    pool().len()
}

/// Frees the contexts kept for reuse (for a process near its memory bound).
pub fn free_pooled_contexts() {
    let pooled = std::mem::take(&mut *pool());
    drop(pooled);
}

/// A context from the pool, or a new one.
fn pooled_context<'a>() -> zstd_safe::CCtx<'a> {
    let taken = pool().pop();
    taken.unwrap_or_else(zstd_safe::CCtx::create)
}

/// Gives `context` to the pool if it is small, can be reset and there is room, or
/// frees it.
fn pool_context(mut context: zstd_safe::CCtx<'_>) {
    // Resetting the parameters also unloads any dictionary or prefix, the only
    // things the context may borrow (and frees a dictionary it loaded).
    if context
        .reset(zstd_safe::ResetDirective::SessionAndParameters)
        .is_err()
        || context.sizeof() > POOL_CONTEXT_BYTES
    {
        return;
    }
    // Safety: only the lifetime changes, and after the reset the context refers to
    // nothing it borrowed.
    let context: zstd_safe::CCtx<'static> =
        unsafe { std::mem::transmute(context) };
    let mut pool = pool();
    if pool.len() < POOL_CONTEXTS {
        pool.push(context);
    } else {
        // Freed outside the lock.
        drop(pool);
        drop(context);
    }
}

/// Allows to compress independently multiple chunks of data.
///
/// Each job will be processed entirely in-memory without streaming, so this
/// is most fitting for many small jobs. To compress larger volume that don't
/// easily fit in memory, a streaming compression may be more appropriate.
///
/// It is more efficient than a streaming compressor for 2 reasons:
/// * It re-uses the zstd context between jobs to avoid re-allocations
/// * It avoids copying data from a `Read` into a temporary buffer before compression.
pub struct Compressor<'a> {
    /// Taken out only by `drop`.
    context: ManuallyDrop<zstd_safe::CCtx<'a>>,
}

impl Default for Compressor<'_> {
    fn default() -> Self {
        Compressor {
            context: ManuallyDrop::new(pooled_context()),
        }
    }
}

impl Drop for Compressor<'_> {
    fn drop(&mut self) {
        // Safety: `context` is not used after this.
        pool_context(unsafe { ManuallyDrop::take(&mut self.context) });
    }
}

impl Compressor<'static> {
    /// Creates a new zstd compressor
    pub fn new(level: i32) -> io::Result<Self> {
        Self::with_dictionary(level, &[])
    }

    /// Creates a new zstd compressor, using the given dictionary.
    ///
    /// Note that using a dictionary means that decompression will need to use
    /// the same dictionary.
    pub fn with_dictionary(level: i32, dictionary: &[u8]) -> io::Result<Self> {
        let mut compressor = Self::default();

        compressor.set_dictionary(level, dictionary)?;

        Ok(compressor)
    }
}

impl<'a> Compressor<'a> {
    /// Creates a new compressor using an existing `EncoderDictionary`.
    ///
    /// The compression level will be the one specified when creating the dictionary.
    ///
    /// Note that using a dictionary means that decompression will need to use
    /// the same dictionary.
    pub fn with_prepared_dictionary<'b>(
        dictionary: &'a crate::dict::EncoderDictionary<'b>,
    ) -> io::Result<Self>
    where
        'b: 'a,
    {
        let mut compressor = Self::default();

        compressor.set_prepared_dictionary(dictionary)?;

        Ok(compressor)
    }

    /// Changes the compression level used by this compressor.
    ///
    /// *This will clear any dictionary previously registered.*
    ///
    /// If you want to keep the existing dictionary, you will need to pass it again to
    /// `Self::set_dictionary` instead of using this method.
    pub fn set_compression_level(&mut self, level: i32) -> io::Result<()> {
        self.set_dictionary(level, &[])
    }

    /// Changes the dictionary and compression level used by this compressor.
    ///
    /// Will affect future compression jobs.
    ///
    /// Note that using a dictionary means that decompression will need to use
    /// the same dictionary.
    pub fn set_dictionary(
        &mut self,
        level: i32,
        dictionary: &[u8],
    ) -> io::Result<()> {
        self.context
            .set_parameter(zstd_safe::CParameter::CompressionLevel(level))
            .map_err(map_error_code)?;

        self.context
            .load_dictionary(dictionary)
            .map_err(map_error_code)?;

        Ok(())
    }

    /// Changes the dictionary used by this compressor.
    ///
    /// The compression level used when preparing the dictionary will be used.
    ///
    /// Note that using a dictionary means that decompression will need to use
    /// the same dictionary.
    pub fn set_prepared_dictionary<'b>(
        &mut self,
        dictionary: &'a crate::dict::EncoderDictionary<'b>,
    ) -> io::Result<()>
    where
        'b: 'a,
    {
        self.context
            .ref_cdict(dictionary.as_cdict())
            .map_err(map_error_code)?;

        Ok(())
    }

    /// Compress a single block of data to the given destination buffer.
    ///
    /// Returns the number of bytes written, or an error if something happened
    /// (for instance if the destination buffer was too small).
    ///
    /// A level of `0` uses zstd's default (currently `3`).
    pub fn compress_to_buffer<C: zstd_safe::WriteBuf + ?Sized>(
        &mut self,
        source: &[u8],
        destination: &mut C,
    ) -> io::Result<usize> {
        self.context
            .compress2(destination, source)
            .map_err(map_error_code)
    }

    /// Compresses a block of data and returns the compressed result.
    ///
    /// A level of `0` uses zstd's default (currently `3`).
    pub fn compress(&mut self, data: &[u8]) -> io::Result<Vec<u8>> {
        // We allocate a big buffer, slightly larger than the input data.
        let buffer_len = zstd_safe::compress_bound(data.len());
        let mut buffer = Vec::with_capacity(buffer_len);

        self.compress_to_buffer(data, &mut buffer)?;

        // Should we shrink the vec? Meh, let the user do it if he wants.
        Ok(buffer)
    }

    /// Gives mutable access to the internal context.
    pub fn context_mut(&mut self) -> &mut zstd_safe::CCtx<'a> {
        &mut self.context
    }

    /// Sets a compression parameter for this compressor.
    pub fn set_parameter(
        &mut self,
        parameter: zstd_safe::CParameter,
    ) -> io::Result<()> {
        self.context
            .set_parameter(parameter)
            .map_err(map_error_code)?;
        Ok(())
    }

    /// Sets the expected size of the input.
    ///
    /// This affects the compression effectiveness.
    ///
    /// It is an error to give an incorrect size (an error will be returned when closing the
    /// stream if the size does not match what was pledged).
    ///
    /// Giving a `None` size means the size is unknown (this is the default).
    pub fn set_pledged_src_size(
        &mut self,
        size: Option<u64>,
    ) -> io::Result<()> {
        self.context
            .set_pledged_src_size(size)
            .map_err(map_error_code)?;
        Ok(())
    }

    crate::encoder_parameters!();
}

fn _assert_traits() {
    fn _assert_send<T: Send>(_: T) {}

    _assert_send(Compressor::new(0));
}
