//! Kerberos through the system's GSS-API library (MIT's `libgssapi_krb5.so.2`), loaded when a
//! JAAS section (or a client's settings) asks for Kerberos: the acceptor side, what a server
//! needs to take a client's (or a peer's) Kerberos token and learn who it is, and the initiator
//! side, what a client (or a server dialling a peer) needs to prove who it is. Credentials come
//! from a keytab named per credential (MIT's credential store), never from process-wide state,
//! so one process can accept as one principal and initiate as another.
//!
//! Why the library is loaded at run time with the few functions declared here, rather than
//! through a bindings crate: the bindings crates generate their declarations with bindgen at
//! build time, which needs libclang and the krb5 headers on every machine that builds Paddock,
//! Kerberos or not. Debian installs the library itself everywhere (`libgssapi-krb5-2`); a
//! server that is not asked for Kerberos never loads it. The declarations follow RFC 2744 (the
//! C bindings of GSS-API v2) and MIT's `gssapi_krb5.h`.

use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::OnceLock;
use thiserror::Error;

type OmUint32 = u32;

#[repr(C)]
struct Buffer {
    length: usize,
    value: *mut c_void,
}

impl Buffer {
    fn empty() -> Buffer {
        Buffer {
            length: 0,
            value: std::ptr::null_mut(),
        }
    }

    /// A view of `data` to pass in (the library never writes to an input buffer).
    fn of(data: &[u8]) -> Buffer {
        Buffer {
            length: data.len(),
            value: data.as_ptr() as *mut c_void,
        }
    }
}

#[repr(C)]
struct KeyValue {
    key: *const c_char,
    value: *const c_char,
}

#[repr(C)]
struct KeyValueSet {
    count: OmUint32,
    elements: *const KeyValue,
}

#[repr(C)]
struct Oid {
    length: OmUint32,
    elements: *mut c_void,
}

type Name = *mut c_void;
type Ctx = *mut c_void;
type Cred = *mut c_void;

const GSS_S_CONTINUE_NEEDED: OmUint32 = 1;
const GSS_C_ACCEPT: c_int = 2;
const GSS_C_GSS_CODE: c_int = 1;
const GSS_C_MECH_CODE: c_int = 2;
const GSS_C_INDEFINITE: OmUint32 = 0xffff_ffff;
const GSS_C_INITIATE: c_int = 1;
const GSS_C_MUTUAL_FLAG: OmUint32 = 2;
const GSS_C_REPLAY_FLAG: OmUint32 = 4;
const GSS_C_SEQUENCE_FLAG: OmUint32 = 8;
const GSS_C_INTEG_FLAG: OmUint32 = 32;
/// 1.2.840.113554.1.2.2, the Kerberos 5 mechanism.
const KRB5_MECH: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];
/// 1.2.840.113554.1.2.2.1, GSS_KRB5_NT_PRINCIPAL_NAME: a name written `service/host@REALM`.
const KRB5_NT_PRINCIPAL_NAME: [u8; 10] =
    [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02, 0x01];

fn failed(major: OmUint32) -> bool {
    // The calling and routine error fields; the low 16 bits are informatory.
    major & 0xffff_0000 != 0
}

/// The functions Paddock calls, resolved once.
struct Lib {
    _lib: libloading::Library,
    import_name: unsafe extern "C" fn(*mut OmUint32, *mut Buffer, *mut Oid, *mut Name) -> OmUint32,
    release_name: unsafe extern "C" fn(*mut OmUint32, *mut Name) -> OmUint32,
    display_name: unsafe extern "C" fn(*mut OmUint32, Name, *mut Buffer, *mut *mut Oid) -> OmUint32,
    acquire_cred_from: unsafe extern "C" fn(
        *mut OmUint32,
        Name,
        OmUint32,
        *mut c_void,
        c_int,
        *const KeyValueSet,
        *mut Cred,
        *mut *mut c_void,
        *mut OmUint32,
    ) -> OmUint32,
    init_sec_context: unsafe extern "C" fn(
        *mut OmUint32,
        Cred,
        *mut Ctx,
        Name,
        *mut Oid,
        OmUint32,
        OmUint32,
        *mut c_void,
        *mut Buffer,
        *mut *mut Oid,
        *mut Buffer,
        *mut OmUint32,
        *mut OmUint32,
    ) -> OmUint32,
    release_cred: unsafe extern "C" fn(*mut OmUint32, *mut Cred) -> OmUint32,
    accept_sec_context: unsafe extern "C" fn(
        *mut OmUint32,
        *mut Ctx,
        Cred,
        *mut Buffer,
        *mut c_void,
        *mut Name,
        *mut *mut Oid,
        *mut Buffer,
        *mut OmUint32,
        *mut OmUint32,
        *mut Cred,
    ) -> OmUint32,
    delete_sec_context: unsafe extern "C" fn(*mut OmUint32, *mut Ctx, *mut Buffer) -> OmUint32,
    wrap: unsafe extern "C" fn(
        *mut OmUint32,
        Ctx,
        c_int,
        OmUint32,
        *mut Buffer,
        *mut c_int,
        *mut Buffer,
    ) -> OmUint32,
    unwrap: unsafe extern "C" fn(
        *mut OmUint32,
        Ctx,
        *mut Buffer,
        *mut Buffer,
        *mut c_int,
        *mut OmUint32,
    ) -> OmUint32,
    release_buffer: unsafe extern "C" fn(*mut OmUint32, *mut Buffer) -> OmUint32,
    display_status: unsafe extern "C" fn(
        *mut OmUint32,
        OmUint32,
        c_int,
        *mut Oid,
        *mut OmUint32,
        *mut Buffer,
    ) -> OmUint32,
}

/// What went wrong, with the library's own words for it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum GssError {
    #[error(
        "cannot load the GSS-API library (libgssapi_krb5.so.2, Debian's libgssapi-krb5-2): {0}"
    )]
    Load(String),
    #[error("{what}: {msg}")]
    Call { what: &'static str, msg: String },
}

static LIB: OnceLock<Result<Lib, GssError>> = OnceLock::new();

fn lib() -> Result<&'static Lib, GssError> {
    LIB.get_or_init(|| {
        // SAFETY: loading MIT's GSS-API library runs its initialisers, which are safe to run in
        // any process; every symbol is declared above with its C signature (RFC 2744).
        unsafe {
            let lib = libloading::Library::new("libgssapi_krb5.so.2")
                .map_err(|e| GssError::Load(e.to_string()))?;
            macro_rules! sym {
                ($name:literal) => {
                    *lib.get($name).map_err(|e| GssError::Load(e.to_string()))?
                };
            }
            Ok(Lib {
                import_name: sym!(b"gss_import_name\0"),
                release_name: sym!(b"gss_release_name\0"),
                display_name: sym!(b"gss_display_name\0"),
                release_cred: sym!(b"gss_release_cred\0"),
                accept_sec_context: sym!(b"gss_accept_sec_context\0"),
                delete_sec_context: sym!(b"gss_delete_sec_context\0"),
                wrap: sym!(b"gss_wrap\0"),
                unwrap: sym!(b"gss_unwrap\0"),
                release_buffer: sym!(b"gss_release_buffer\0"),
                display_status: sym!(b"gss_display_status\0"),
                acquire_cred_from: sym!(b"gss_acquire_cred_from\0"),
                init_sec_context: sym!(b"gss_init_sec_context\0"),
                _lib: lib,
            })
        }
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// The library's messages for a status (both its GSS and mechanism parts).
fn status(l: &Lib, what: &'static str, major: OmUint32, minor: OmUint32) -> GssError {
    let mut parts = Vec::new();
    for (code, kind) in [(major, GSS_C_GSS_CODE), (minor, GSS_C_MECH_CODE)] {
        if code == 0 {
            continue;
        }
        let mut more: OmUint32 = 0;
        loop {
            let (mut m, mut buf) = (0, Buffer::empty());
            // SAFETY: valid pointers to locals; the buffer is released below.
            let r = unsafe {
                (l.display_status)(
                    &mut m,
                    code,
                    kind,
                    std::ptr::null_mut(),
                    &mut more,
                    &mut buf,
                )
            };
            if failed(r) {
                break;
            }
            parts.push(take(l, &mut buf));
            if more == 0 {
                break;
            }
        }
    }
    GssError::Call {
        what,
        msg: if parts.is_empty() {
            format!("major {major:#x}, minor {minor}")
        } else {
            parts.join("; ")
        },
    }
}

/// Copies a buffer the library allocated, and releases it.
fn take(l: &Lib, buf: &mut Buffer) -> String {
    String::from_utf8_lossy(&take_bytes(l, buf)).into_owned()
}

fn take_bytes(l: &Lib, buf: &mut Buffer) -> Vec<u8> {
    let out = if buf.value.is_null() || buf.length == 0 {
        Vec::new()
    } else {
        // SAFETY: the library filled `value` with `length` bytes.
        unsafe { std::slice::from_raw_parts(buf.value as *const u8, buf.length).to_vec() }
    };
    let mut m = 0;
    // SAFETY: a buffer the library allocated (or an empty one, which it ignores).
    unsafe { (l.release_buffer)(&mut m, buf) };
    out
}

/// Imports a principal name (`service/host@REALM`, `user@REALM`; the default realm when none).
fn import_name(l: &Lib, principal: &str) -> Result<Name, GssError> {
    let mut minor = 0;
    let mut name: Name = std::ptr::null_mut();
    let mut oid = Oid {
        length: KRB5_NT_PRINCIPAL_NAME.len() as OmUint32,
        elements: KRB5_NT_PRINCIPAL_NAME.as_ptr() as *mut c_void,
    };
    let mut buf = Buffer::of(principal.as_bytes());
    // SAFETY: valid pointers; the caller releases `name`.
    let r = unsafe { (l.import_name)(&mut minor, &mut buf, &mut oid, &mut name) };
    if failed(r) {
        return Err(status(l, "the principal", r, minor));
    }
    Ok(name)
}

fn release_name(l: &Lib, mut name: Name) {
    let mut m = 0;
    // SAFETY: a name the library gave.
    unsafe { (l.release_name)(&mut m, &mut name) };
}

/// Credentials for `principal` (or the default one) from a credential store (MIT's
/// `gss_acquire_cred_from`: `keytab` for an acceptor, `client_keytab` and `ccache` for an
/// initiator).
fn acquire(
    principal: Option<&str>,
    usage: c_int,
    store: &[(&str, &str)],
) -> Result<Cred, GssError> {
    let l = lib()?;
    let cstr = |s: &str| {
        CString::new(s).map_err(|_| GssError::Call {
            what: "credential store",
            msg: format!("{s:?} contains a NUL byte"),
        })
    };
    let owned: Vec<(CString, CString)> = store
        .iter()
        .map(|(k, v)| Ok((cstr(k)?, cstr(v)?)))
        .collect::<Result<_, GssError>>()?;
    let elements: Vec<KeyValue> = owned
        .iter()
        .map(|(k, v)| KeyValue {
            key: k.as_ptr(),
            value: v.as_ptr(),
        })
        .collect();
    let set = KeyValueSet {
        count: elements.len() as OmUint32,
        elements: elements.as_ptr(),
    };
    let name = match principal {
        Some(p) => import_name(l, p)?,
        None => std::ptr::null_mut(),
    };
    let (mut minor, mut cred): (OmUint32, Cred) = (0, std::ptr::null_mut());
    let mut mech = Oid {
        length: KRB5_MECH.len() as OmUint32,
        elements: KRB5_MECH.as_ptr() as *mut c_void,
    };
    let mut mechs = OidSet {
        count: 1,
        elements: &mut mech,
    };
    // SAFETY: valid pointers to locals that outlive the call; `cred` is owned by the caller.
    let r = unsafe {
        (l.acquire_cred_from)(
            &mut minor,
            name,
            GSS_C_INDEFINITE,
            &mut mechs as *mut OidSet as *mut c_void,
            usage,
            &set,
            &mut cred,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if !name.is_null() {
        release_name(l, name);
    }
    if failed(r) {
        return Err(status(l, "acquiring Kerberos credentials", r, minor));
    }
    Ok(cred)
}

#[repr(C)]
struct OidSet {
    count: usize,
    elements: *mut Oid,
}

/// A credential handle, released when dropped.
struct CredHandle(Cred);

impl Drop for CredHandle {
    fn drop(&mut self) {
        if let Ok(l) = lib() {
            let mut m = 0;
            // SAFETY: a handle `acquire` gave, released once.
            unsafe { (l.release_cred)(&mut m, &mut self.0) };
        }
    }
}

/// A security context handle (null until the first step), deleted when dropped.
struct CtxHandle(Ctx);

impl Drop for CtxHandle {
    fn drop(&mut self) {
        if self.0.is_null() {
            return;
        }
        if let Ok(l) = lib() {
            let mut m = 0;
            // SAFETY: the context the library made for this handle, deleted once.
            unsafe { (l.delete_sec_context)(&mut m, &mut self.0, std::ptr::null_mut()) };
        }
    }
}

/// This server's Kerberos credentials: the keys of `principal` from `keytab`.
pub struct Acceptor {
    cred: CredHandle,
    /// The principal, as configured (`zookeeper/host@REALM`).
    pub principal: String,
}

// SAFETY: a GSS credential handle may be used from any thread (MIT's library is thread-safe);
// Paddock only reads it, from one exchange at a time per context.
unsafe impl Send for Acceptor {}
unsafe impl Sync for Acceptor {}

impl Acceptor {
    /// Acquires the acceptor credentials at start, so a wrong keytab or principal stops the
    /// server instead of failing every client later.
    pub fn new(keytab: &str, principal: &str) -> Result<Acceptor, GssError> {
        let cred = acquire(Some(principal), GSS_C_ACCEPT, &[("keytab", keytab)])?;
        Ok(Acceptor {
            cred: CredHandle(cred),
            principal: principal.to_owned(),
        })
    }

    /// A new security context for one peer's exchange.
    pub fn context(&self) -> Context {
        Context {
            ctx: CtxHandle(std::ptr::null_mut()),
            peer: None,
        }
    }
}

/// What accepting one token gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Accepted {
    /// More tokens are needed; send this one.
    Continue(Vec<u8>),
    /// The context is established (the peer is known); send this token if not empty.
    Complete(Vec<u8>),
}

/// One security context, acceptor side.
pub struct Context {
    ctx: CtxHandle,
    /// The peer's principal, once established.
    pub peer: Option<String>,
}

// SAFETY: a context is used by one exchange at a time (it moves with it between threads),
// which MIT's library allows.
unsafe impl Send for Context {}

impl Context {
    /// Takes the peer's next token.
    pub fn accept(&mut self, acceptor: &Acceptor, token: &[u8]) -> Result<Accepted, GssError> {
        let l = lib()?;
        let mut minor = 0;
        let mut input = Buffer::of(token);
        let mut out = Buffer::empty();
        let mut src: Name = std::ptr::null_mut();
        // SAFETY: valid pointers; `out` and `src` are released below.
        let r = unsafe {
            (l.accept_sec_context)(
                &mut minor,
                &mut self.ctx.0,
                acceptor.cred.0,
                &mut input,
                std::ptr::null_mut(),
                &mut src,
                std::ptr::null_mut(),
                &mut out,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        let token = take_bytes(l, &mut out);
        if failed(r) {
            return Err(status(l, "accepting the Kerberos token", r, minor));
        }
        if r & GSS_S_CONTINUE_NEEDED != 0 {
            return Ok(Accepted::Continue(token));
        }
        if !src.is_null() {
            let mut name = Buffer::empty();
            // SAFETY: the source name the library returned; released right after.
            let d = unsafe { (l.display_name)(&mut minor, src, &mut name, std::ptr::null_mut()) };
            if !failed(d) {
                self.peer = Some(take(l, &mut name));
            }
            release_name(l, src);
        }
        Ok(Accepted::Complete(token))
    }

    /// Integrity-protects (without encrypting) a message for the peer.
    pub fn wrap(&mut self, msg: &[u8]) -> Result<Vec<u8>, GssError> {
        wrap(self.ctx.0, msg)
    }

    /// Checks and opens a message the peer wrapped.
    pub fn unwrap(&mut self, msg: &[u8]) -> Result<Vec<u8>, GssError> {
        unwrap(self.ctx.0, msg)
    }
}

/// Credentials to prove who we are: a principal's keys from a keytab (a server dialling its
/// peers), or the tickets `kinit` left in the default cache (a user's client).
pub struct Initiator {
    cred: CredHandle,
}

// SAFETY: as for `Acceptor`.
unsafe impl Send for Initiator {}
unsafe impl Sync for Initiator {}

impl Initiator {
    /// With a keytab: the principal's keys, tickets kept in memory. Without: the default
    /// credentials cache (`KRB5CCNAME`, what `kinit` wrote).
    pub fn new(keytab: Option<&str>, principal: Option<&str>) -> Result<Initiator, GssError> {
        let cred = match keytab {
            Some(kt) => {
                // A memory cache per credential, so nothing is written to disk and two
                // initiators never share one.
                static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                let cache = format!(
                    "MEMORY:paddock-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                );
                acquire(
                    principal,
                    GSS_C_INITIATE,
                    &[("client_keytab", kt), ("ccache", &cache)],
                )?
            }
            None => acquire(principal, GSS_C_INITIATE, &[])?,
        };
        Ok(Initiator {
            cred: CredHandle(cred),
        })
    }

    /// A new context with `target` (`service/host`, the realm is the default one when left
    /// out): mutual authentication, integrity and ordering asked for.
    pub fn context(&self, target: &str) -> Result<InitContext, GssError> {
        let l = lib()?;
        Ok(InitContext {
            ctx: CtxHandle(std::ptr::null_mut()),
            target: import_name(l, target)?,
        })
    }

    /// Takes the peer's token (none at first) and gives ours.
    pub fn step(&self, c: &mut InitContext, token: Option<&[u8]>) -> Result<Accepted, GssError> {
        let l = lib()?;
        let mut minor = 0;
        let mut input = Buffer::of(token.unwrap_or(&[]));
        let mut out = Buffer::empty();
        let mut mech = Oid {
            length: KRB5_MECH.len() as OmUint32,
            elements: KRB5_MECH.as_ptr() as *mut c_void,
        };
        // SAFETY: valid pointers; `out` is released by take_bytes.
        let r = unsafe {
            (l.init_sec_context)(
                &mut minor,
                self.cred.0,
                &mut c.ctx.0,
                c.target,
                &mut mech,
                GSS_C_MUTUAL_FLAG | GSS_C_REPLAY_FLAG | GSS_C_SEQUENCE_FLAG | GSS_C_INTEG_FLAG,
                0,
                std::ptr::null_mut(),
                if token.is_some() {
                    &mut input
                } else {
                    std::ptr::null_mut()
                },
                std::ptr::null_mut(),
                &mut out,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        let bytes = take_bytes(l, &mut out);
        if failed(r) {
            return Err(status(l, "starting the Kerberos exchange", r, minor));
        }
        Ok(if r & GSS_S_CONTINUE_NEEDED != 0 {
            Accepted::Continue(bytes)
        } else {
            Accepted::Complete(bytes)
        })
    }
}

/// One security context, initiator side.
pub struct InitContext {
    ctx: CtxHandle,
    target: Name,
}

// SAFETY: as for `Context`.
unsafe impl Send for InitContext {}

impl InitContext {
    /// Integrity-protects a message for the peer (SASL's security layer negotiation).
    pub fn wrap(&mut self, msg: &[u8]) -> Result<Vec<u8>, GssError> {
        wrap(self.ctx.0, msg)
    }

    /// Checks and opens a message the peer wrapped.
    pub fn unwrap(&mut self, msg: &[u8]) -> Result<Vec<u8>, GssError> {
        unwrap(self.ctx.0, msg)
    }
}

impl Drop for InitContext {
    fn drop(&mut self) {
        if let Ok(l) = lib() {
            release_name(l, self.target);
        }
    }
}

fn wrap(ctx: Ctx, msg: &[u8]) -> Result<Vec<u8>, GssError> {
    let l = lib()?;
    let (mut minor, mut conf) = (0, 0);
    let mut input = Buffer::of(msg);
    let mut out = Buffer::empty();
    // SAFETY: an established context; `out` is released by take_bytes.
    let r = unsafe { (l.wrap)(&mut minor, ctx, 0, 0, &mut input, &mut conf, &mut out) };
    let bytes = take_bytes(l, &mut out);
    if failed(r) {
        return Err(status(l, "wrapping", r, minor));
    }
    Ok(bytes)
}

fn unwrap(ctx: Ctx, msg: &[u8]) -> Result<Vec<u8>, GssError> {
    let l = lib()?;
    let (mut minor, mut conf, mut qop) = (0, 0, 0);
    let mut input = Buffer::of(msg);
    let mut out = Buffer::empty();
    // SAFETY: an established context; `out` is released by take_bytes.
    let r = unsafe { (l.unwrap)(&mut minor, ctx, &mut input, &mut out, &mut conf, &mut qop) };
    let bytes = take_bytes(l, &mut out);
    if failed(r) {
        return Err(status(l, "unwrapping", r, minor));
    }
    Ok(bytes)
}
