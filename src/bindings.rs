//! Every Python-visible class and function, and the one error conversion.
//!
//! Network calls run with the GIL released (`py.detach`). A verified-session
//! cache hit is answered without releasing it: the lookup is far cheaper
//! than a release and re-acquire.

#![allow(
    clippy::needless_pass_by_value,
    reason = "PyO3 hands #[pymethods] their extracted arguments by value"
)]

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::{PyException, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyString};
use serde_json::{Map, Value};

use crate::core::{self, Exchanged, Refreshed, Settings};
use crate::error::Error;
use crate::levels::Level;
use crate::sdk;

pyo3::create_exception!(
    _core,
    WouldBlock,
    PyException,
    "Raised with `blocking=False` when answering needs a call to Descope."
);

const EXCEPTIONS_MODULE: &str = "mlflow_descope_auth.exceptions";

/// The Python classes of `mlflow_descope_auth.exceptions`, imported once.
static EXCEPTIONS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

impl From<Error> for PyErr {
    fn from(error: Error) -> Self {
        let class = match &error {
            Error::InvalidToken(_) => "InvalidTokenError",
            Error::Expired => "TokenExpiredError",
            Error::AccessKeyRefused => "AccessKeyRefusedError",
            Error::RefreshRefused(_) => "RefreshRefusedError",
            Error::Unavailable { .. } => "DescopeUnavailableError",
            Error::RateLimited { .. } => "DescopeRateLimitedError",
            Error::Config(_) | Error::RouteTable(_) => "ConfigurationError",
            Error::WouldBlock => return WouldBlock::new_err(error.to_string()),
        };
        Python::attach(|py| {
            let raised = || -> PyResult<PyErr> {
                let module = EXCEPTIONS
                    .get_or_try_init(py, || py.import(EXCEPTIONS_MODULE).map(Bound::unbind))?;
                let kwargs = PyDict::new(py);
                if let Some(seconds) = error.retry_after() {
                    kwargs.set_item("retry_after", seconds)?;
                }
                let instance = module
                    .bind(py)
                    .getattr(class)?
                    .call((error.to_string(),), Some(&kwargs))?;
                Ok(PyErr::from_value(instance))
            };
            raised().unwrap_or_else(|failure| {
                PyRuntimeError::new_err(format!("{error} (and {class} is unavailable: {failure})"))
            })
        })
    }
}

/// A string quoted as Python's `repr` would, for the `__repr__` methods.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for ch in text.chars() {
        match ch {
            '\\' | '\'' => {
                out.push('\\');
                out.push(ch);
            }
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn config_error(message: &str) -> PyErr {
    Error::Config(message.to_owned()).into()
}

fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        config_error(&format!(
            "{name} must be a finite number of seconds, 0 or more"
        ))
    })
}

/// A JSON value as the equivalent Python object.
fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(flag) => flag.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(number) => {
            if let Some(whole) = number.as_i64() {
                whole.into_pyobject(py)?.into_any()
            } else if let Some(whole) = number.as_u64() {
                whole.into_pyobject(py)?.into_any()
            } else {
                number
                    .as_f64()
                    .unwrap_or(f64::NAN)
                    .into_pyobject(py)?
                    .into_any()
            }
        }
        Value::String(text) => PyString::new(py, text).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(members) => map_to_py(py, members)?.into_any(),
    })
}

fn map_to_py<'py>(py: Python<'py>, members: &Map<String, Value>) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (name, value) in members {
        dict.set_item(name, to_py(py, value)?)?;
    }
    Ok(dict)
}

/// A dict as a JSON object (through Python's `json`, so any JSON-able value works).
fn json_object(dict: &Bound<'_, PyDict>) -> PyResult<Map<String, Value>> {
    let text: String = dict
        .py()
        .import("json")?
        .call_method1("dumps", (dict,))?
        .extract()?;
    serde_json::from_str(&text).map_err(|_| {
        pyo3::exceptions::PyValueError::new_err("login_options must be JSON-serialisable")
    })
}

/// The identity of one verified session token. Never holds the raw token.
#[pyclass(frozen, module = "mlflow_descope_auth._core")]
pub struct Session {
    inner: Arc<core::Session>,
}

#[pymethods]
impl Session {
    #[getter]
    fn user_id(&self) -> &str {
        &self.inner.claims.user_id
    }

    #[getter]
    fn username(&self) -> &str {
        &self.inner.claims.username
    }

    #[getter]
    fn email(&self) -> Option<&str> {
        self.inner.claims.email.as_deref()
    }

    #[getter]
    fn name(&self) -> Option<&str> {
        self.inner.claims.name.as_deref()
    }

    #[getter]
    fn roles(&self) -> Vec<String> {
        self.inner.claims.grants.roles.clone()
    }

    #[getter]
    fn permissions(&self) -> Vec<String> {
        self.inner.claims.grants.permissions.clone()
    }

    #[getter]
    fn tenants<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let tenants = PyDict::new(py);
        for (id, grants) in &self.inner.claims.tenants {
            let entry = PyDict::new(py);
            entry.set_item("roles", &grants.roles)?;
            entry.set_item("permissions", &grants.permissions)?;
            tenants.set_item(id, entry)?;
        }
        Ok(tenants)
    }

    #[getter]
    fn current_tenant(&self) -> Option<&str> {
        self.inner.claims.current_tenant.as_deref()
    }

    #[getter]
    fn level(&self) -> &'static str {
        self.inner.level.as_str()
    }

    #[getter]
    fn is_admin(&self) -> bool {
        self.inner.level == Level::Manage
    }

    #[getter]
    fn project_id(&self) -> &str {
        &self.inner.project_id
    }

    #[getter]
    fn expires_at(&self) -> i64 {
        self.inner.claims.expires_at
    }

    #[getter]
    fn issued_at(&self) -> Option<i64> {
        self.inner.claims.issued_at
    }

    #[getter]
    fn is_access_key(&self) -> bool {
        self.inner.is_access_key
    }

    /// Whether this session's level meets a route requirement as
    /// `RouteTable.lookup` names it: the gate's decision once it has looked
    /// the route up itself, without a second lookup in `Core.authorize`.
    fn meets(&self, requirement: &str) -> PyResult<bool> {
        match crate::routes::Requirement::parse(requirement) {
            Some(required) => Ok(required.is_met_by(self.inner.level)),
            None => Err(pyo3::exceptions::PyValueError::new_err(format!(
                "unknown route requirement {requirement:?}; use {}",
                crate::routes::Requirement::NAMES
            ))),
        }
    }

    /// Every claim of the token, as a new dict.
    fn claims<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        map_to_py(py, &self.inner.claims.raw)
    }

    /// The Descope SDK's `validate_session` result; `session_token` fills
    /// its `jwt` fields.
    #[pyo3(signature = (session_token = None))]
    fn sdk_response<'py>(
        &self,
        py: Python<'py>,
        session_token: Option<Cow<'_, str>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        map_to_py(
            py,
            &sdk::session_response(&self.inner, session_token.as_deref()),
        )
    }

    fn __repr__(&self) -> String {
        format!(
            "Session(user_id={}, level={}, is_access_key={})",
            quoted(&self.inner.claims.user_id),
            quoted(self.inner.level.as_str()),
            if self.inner.is_access_key {
                "True"
            } else {
                "False"
            }
        )
    }
}

fn session(inner: Arc<core::Session>) -> Session {
    Session { inner }
}

/// What a refresh (or tenant select) returned, already verified.
#[pyclass(frozen, module = "mlflow_descope_auth._core")]
pub struct RefreshResult {
    inner: Arc<Refreshed>,
}

#[pymethods]
impl RefreshResult {
    #[getter]
    fn session_jwt(&self) -> &str {
        &self.inner.session_jwt
    }

    /// The new refresh token when Descope rotated it, else None.
    #[getter]
    fn refresh_jwt(&self) -> Option<&str> {
        self.inner.refresh_jwt.as_deref()
    }

    #[getter]
    fn session(&self) -> Session {
        session(self.inner.session.clone())
    }

    #[getter]
    fn refresh_expires_at(&self) -> Option<i64> {
        self.inner.refresh_expires_at
    }

    /// The Descope SDK's `refresh_session` result.
    fn sdk_response<'py>(
        &self,
        py: Python<'py>,
        refresh_token: Cow<'_, str>,
    ) -> PyResult<Bound<'py, PyDict>> {
        map_to_py(py, &sdk::refresh_response(&self.inner, &refresh_token))
    }

    fn __repr__(&self) -> String {
        format!(
            "RefreshResult(user_id={}, rotated={})",
            quoted(&self.inner.session.claims.user_id),
            if self.inner.refresh_jwt.is_some() {
                "True"
            } else {
                "False"
            }
        )
    }
}

/// What an access-key exchange returned, already verified.
#[pyclass(frozen, module = "mlflow_descope_auth._core")]
pub struct AccessKeyResult {
    inner: Arc<Exchanged>,
}

#[pymethods]
impl AccessKeyResult {
    #[getter]
    fn key_id(&self) -> &str {
        &self.inner.key_id
    }

    #[getter]
    fn session_jwt(&self) -> &str {
        &self.inner.session_jwt
    }

    #[getter]
    fn expiration(&self) -> i64 {
        self.inner.expiration
    }

    #[getter]
    fn session(&self) -> Session {
        session(self.inner.session.clone())
    }

    /// The Descope SDK's `exchange_access_key` result.
    fn sdk_response<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        map_to_py(py, &sdk::exchange_response(&self.inner))
    }

    fn __repr__(&self) -> String {
        format!("AccessKeyResult(key_id={})", quoted(&self.inner.key_id))
    }
}

/// `aud` wanted by a caller: one string or several.
#[derive(FromPyObject)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(one) => vec![one],
            Self::Many(many) => many,
        }
    }
}

/// Whether one session may make one request (`Core.authorize`).
#[pyclass(frozen, module = "mlflow_descope_auth._core")]
pub struct Decision {
    inner: core::Decision,
}

#[pymethods]
impl Decision {
    #[getter]
    fn allowed(&self) -> bool {
        self.inner.allowed
    }

    #[getter]
    fn required(&self) -> &'static str {
        self.inner.required.as_str()
    }

    #[getter]
    fn level(&self) -> &'static str {
        self.inner.level.as_str()
    }

    #[getter]
    fn route(&self) -> &str {
        &self.inner.route
    }

    fn __repr__(&self) -> String {
        format!(
            "Decision(allowed={}, required={}, level={}, route={})",
            if self.inner.allowed { "True" } else { "False" },
            quoted(self.inner.required.as_str()),
            quoted(self.inner.level.as_str()),
            quoted(&self.inner.route),
        )
    }
}

/// One project's verifier and Descope client.
#[pyclass(frozen, module = "mlflow_descope_auth._core")]
pub struct Core {
    inner: Arc<core::Core>,
}

impl Core {
    fn session(
        &self,
        py: Python<'_>,
        token: &str,
        blocking: bool,
        audience: Option<Audience>,
    ) -> PyResult<Session> {
        let found = if let Some(found) = self.inner.cached_session(token) {
            found
        } else {
            let inner = &self.inner;
            py.detach(|| inner.validate_session(token, blocking))?
        };
        self.inner
            .check_audience(&found, audience.map(Audience::into_vec).as_deref())?;
        Ok(session(found))
    }
}

#[pymethods]
impl Core {
    #[new]
    #[pyo3(signature = (
        project_id,
        *,
        base_url,
        leeway_seconds = 5,
        http_timeout_seconds = 5.0,
        admin_roles = vec!["admin".to_owned(), "mlflow-admin".to_owned()],
        default_permission = "READ",
        username_claim = "sub",
        tenant = None,
        max_token_bytes = 16384,
        key_refetch_cooldown_seconds = 30.0,
        session_cache_entries = 65536,
        session_cache_bytes = 67_108_864,
        access_key_refusal_seconds = 30.0,
    ))]
    #[allow(
        clippy::too_many_arguments,
        reason = "mirrors the keyword-only Python constructor"
    )]
    fn new(
        project_id: &str,
        base_url: &str,
        leeway_seconds: i64,
        http_timeout_seconds: f64,
        admin_roles: Vec<String>,
        default_permission: &str,
        username_claim: &str,
        tenant: Option<String>,
        max_token_bytes: usize,
        key_refetch_cooldown_seconds: f64,
        session_cache_entries: usize,
        session_cache_bytes: usize,
        access_key_refusal_seconds: f64,
    ) -> PyResult<Self> {
        let Some(default_permission) = Level::parse(default_permission) else {
            return Err(config_error(
                "default_permission must be one of NO_PERMISSIONS, READ, EDIT, MANAGE",
            ));
        };
        let settings = Settings {
            project_id: project_id.to_owned(),
            base_url: base_url.to_owned(),
            leeway_seconds,
            http_timeout: seconds("http_timeout_seconds", http_timeout_seconds)?,
            admin_roles,
            default_permission,
            username_claim: username_claim.to_owned(),
            tenant: tenant.filter(|tenant| !tenant.is_empty()),
            max_token_bytes,
            key_refetch_cooldown: seconds(
                "key_refetch_cooldown_seconds",
                key_refetch_cooldown_seconds,
            )?,
            session_cache_entries,
            session_cache_bytes,
            access_key_refusal: seconds("access_key_refusal_seconds", access_key_refusal_seconds)?,
        };
        Ok(Self {
            inner: Arc::new(core::Core::new(settings)?),
        })
    }

    #[getter]
    fn project_id(&self) -> &str {
        &self.inner.settings().project_id
    }

    #[getter]
    fn base_url(&self) -> &str {
        &self.inner.settings().base_url
    }

    /// Fetches the key set now; returns the number of usable keys.
    fn load_keys(&self, py: Python<'_>) -> PyResult<usize> {
        let inner = &self.inner;
        Ok(py.detach(|| inner.load_keys())?)
    }

    #[pyo3(signature = (token, *, audience = None, blocking = true))]
    fn validate_session(
        &self,
        py: Python<'_>,
        token: Cow<'_, str>,
        audience: Option<Audience>,
        blocking: bool,
    ) -> PyResult<Session> {
        self.session(py, &token, blocking, audience)
    }

    #[pyo3(signature = (token, *, blocking = true))]
    fn validate_refresh(
        &self,
        py: Python<'_>,
        token: Cow<'_, str>,
        blocking: bool,
    ) -> PyResult<Session> {
        let inner = &self.inner;
        Ok(session(
            py.detach(|| inner.validate_refresh(&token, blocking))?,
        ))
    }

    #[pyo3(signature = (credential, *, blocking = true))]
    fn authenticate(
        &self,
        py: Python<'_>,
        credential: Cow<'_, str>,
        blocking: bool,
    ) -> PyResult<Session> {
        if let Some(found) = self.inner.cached_session(&credential) {
            return Ok(session(found));
        }
        let inner = &self.inner;
        Ok(session(
            py.detach(|| inner.authenticate(&credential, blocking))?,
        ))
    }

    fn refresh(&self, py: Python<'_>, refresh_token: Cow<'_, str>) -> PyResult<RefreshResult> {
        let inner = &self.inner;
        let refreshed = py.detach(|| inner.refresh(&refresh_token))?;
        Ok(RefreshResult { inner: refreshed })
    }

    fn logout(&self, py: Python<'_>, refresh_token: Cow<'_, str>) -> PyResult<()> {
        let inner = &self.inner;
        Ok(py.detach(|| inner.logout(&refresh_token))?)
    }

    fn logout_all(&self, py: Python<'_>, refresh_token: Cow<'_, str>) -> PyResult<()> {
        let inner = &self.inner;
        Ok(py.detach(|| inner.logout_all(&refresh_token))?)
    }

    fn me<'py>(&self, py: Python<'py>, refresh_token: Cow<'_, str>) -> PyResult<Bound<'py, PyAny>> {
        let inner = &self.inner;
        let user = py.detach(|| inner.me(&refresh_token))?;
        to_py(py, &user)
    }

    #[pyo3(signature = (access_key, *, audience = None, login_options = None))]
    fn exchange_access_key(
        &self,
        py: Python<'_>,
        access_key: Cow<'_, str>,
        audience: Option<Audience>,
        login_options: Option<Bound<'_, PyDict>>,
    ) -> PyResult<AccessKeyResult> {
        let options = login_options
            .map(|options| json_object(&options))
            .transpose()?;
        let inner = &self.inner;
        let exchanged = py.detach(|| inner.exchange_access_key(&access_key, options.as_ref()))?;
        inner.check_audience(
            &exchanged.session,
            audience.map(Audience::into_vec).as_deref(),
        )?;
        Ok(AccessKeyResult { inner: exchanged })
    }

    fn select_tenant(
        &self,
        py: Python<'_>,
        tenant_id: Cow<'_, str>,
        refresh_token: Cow<'_, str>,
    ) -> PyResult<RefreshResult> {
        let inner = &self.inner;
        let refreshed = py.detach(|| inner.select_tenant(&tenant_id, &refresh_token))?;
        Ok(RefreshResult { inner: refreshed })
    }

    /// Counters: key set fetches, cache entries, hits and misses, calls.
    fn set_routes(&self, table: &PyRouteTable) {
        self.inner.set_routes(Arc::clone(&table.table));
    }

    fn authorize(&self, session: &Session, method: &str, path: &str) -> Decision {
        Decision {
            inner: self.inner.authorize(&session.inner, method, path),
        }
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = self.inner.stats();
        let dict = PyDict::new(py);
        dict.set_item("key_fetches", stats.keys.fetches)?;
        dict.set_item("keys", stats.keys.keys)?;
        dict.set_item("keys_skipped", stats.keys.skipped)?;
        dict.set_item("key_epoch", stats.keys.epoch)?;
        dict.set_item("session_cache_entries", stats.sessions.entries)?;
        dict.set_item("session_cache_bytes", stats.sessions.bytes)?;
        dict.set_item("session_cache_hits", stats.sessions.hits)?;
        dict.set_item("session_cache_misses", stats.sessions.misses)?;
        dict.set_item("access_key_exchanges", stats.access_key_exchanges)?;
        dict.set_item("refresh_calls", stats.refresh_calls)?;
        Ok(dict)
    }

    fn __repr__(&self) -> String {
        format!(
            "Core(project_id={})",
            quoted(&self.inner.settings().project_id)
        )
    }
}

use crate::error::Result;
use crate::routes::{RouteSpec, RouteTable};

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("WouldBlock", m.py().get_type::<WouldBlock>())?;
    m.add_class::<Core>()?;
    m.add_class::<Session>()?;
    m.add_class::<RefreshResult>()?;
    m.add_class::<AccessKeyResult>()?;
    m.add_class::<Decision>()?;
    m.add_class::<PyRouteTable>()?;
    Ok(())
}

/// One route table entry as Python passes it: (method, pattern, level, name).
type RouteTuple = (String, String, String, String);

/// The compiled route table: `lookup(method, path) -> (level, name)`.
#[pyclass(module = "mlflow_descope_auth._core", name = "RouteTable", frozen)]
pub struct PyRouteTable {
    /// Shared with whatever makes decisions from it (`Core.set_routes`).
    pub(crate) table: Arc<RouteTable>,
}

#[pymethods]
impl PyRouteTable {
    #[new]
    #[allow(
        clippy::needless_pass_by_value,
        reason = "PyO3 extracts the Python sequences into owned vectors"
    )]
    #[pyo3(signature = (routes, *, static_prefix = "", first_match = Vec::new()))]
    fn new(
        routes: Vec<RouteTuple>,
        static_prefix: &str,
        first_match: Vec<RouteTuple>,
    ) -> PyResult<Self> {
        let build = || -> Result<RouteTable> {
            RouteTable::new(&specs(&first_match)?, &specs(&routes)?, static_prefix)
        };
        let table = build()?;
        Ok(Self {
            table: Arc::new(table),
        })
    }

    fn lookup(&self, method: &str, path: &str) -> (&'static str, String) {
        let route = self.table.lookup(method, path);
        (route.requirement.as_str(), route.name.to_owned())
    }

    fn __len__(&self) -> usize {
        self.table.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "RouteTable(<{} routes>, static_prefix={:?})",
            self.table.len(),
            self.table.static_prefix()
        )
    }
}

fn specs(routes: &[RouteTuple]) -> Result<Vec<RouteSpec<'_>>> {
    routes
        .iter()
        .map(|(method, pattern, level, name)| RouteSpec::parse(method, pattern, level, name))
        .collect()
}
