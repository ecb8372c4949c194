#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Fs(#[from] berth_fs::Error),
    #[error("metadata database: {0}; run `berth system check` to inspect the store")]
    Db(#[from] rusqlite::Error),
    #[error(transparent)]
    Image(#[from] berth_image::Error),
    #[error("No such image: {0}")]
    NoSuchImage(String),
    #[error("conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories")]
    MultipleRepositories { short: String },
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse { name: String, id: String },
    #[error("conflict: unable to delete {short} (must be forced) - image is being used by stopped container {container}")]
    ImageUsedByStopped { short: String, container: String },
    #[error("conflict: unable to delete {short} (cannot be forced) - image is being used by running container {container}")]
    ImageUsedByRunning { short: String, container: String },
    #[error("conflict: unable to remove repository reference \"{reference}\" (must force) - container {container} is using its referenced image {short}")]
    ReferenceUsed {
        reference: String,
        container: String,
        short: String,
    },
    #[error("get {0}: no such volume")]
    NoSuchVolume(String),
    #[error("remove {name}: volume is in use - [{}]", containers.join(", "))]
    VolumeInUse {
        name: String,
        containers: Vec<String>,
    },
    #[error("network with name {0} already exists")]
    NetworkExists(String),
    #[error("network {0} not found")]
    NoSuchNetwork(String),
    #[error("error while removing network: network has active endpoints ({})", .0.iter().map(|c| &c[..12]).collect::<Vec<_>>().join(", "))]
    NetworkInUse(Vec<String>),
    #[error("endpoint with name already exists in network {0}")]
    AlreadyAttached(String),
    #[error("no address {0} available in network {1}")]
    AddressUnavailable(String, String),
    #[error("image ID prefix {0:?} is ambiguous; give more characters")]
    AmbiguousId(String),
    #[error("invalid image config: {0}")]
    BadConfig(String),
    #[error(
        "image config lists {expected} layers but {actual} were given; the archive is corrupt"
    )]
    LayerCount { expected: usize, actual: usize },
    #[error("layer {index} does not match the image config: expected {expected}, got {actual}; the archive is corrupt")]
    LayerMismatch {
        index: usize,
        expected: berth_oci::Digest,
        actual: berth_oci::Digest,
    },
    #[error("the store at {path} was written by a newer berth (schema {found}, this berth knows up to {known}); upgrade berth")]
    NewerSchema {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("store corrupt: {0}; run `berth system check`")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, Error>;
