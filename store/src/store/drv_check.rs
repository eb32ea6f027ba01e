//! The registration half of "every `.drv` is checked before it is
//! trusted" ([`crate::derivation::check`]): before an install writes
//! anything, each `.drv` of the batch that parses as a derivation must name
//! the output paths its contents give. Input derivations are read from the
//! batch itself (an instantiation installs a whole graph at once) or from
//! the store, each once.

use std::collections::HashMap;
use std::fs;
use std::rc::Rc;

use crate::derivation::{Derivation, DrvHash};
use crate::store::install::{NewPath, Staged};
use crate::store::{Store, StoreError};
use crate::store_path::StorePath;

/// Check every `.drv` of `batch`; the first mismatch is the error.
pub(super) fn check_batch(store: &Store, batch: &[NewPath]) -> Result<(), StoreError> {
    let mut checker = Checker {
        store,
        in_batch: HashMap::new(),
        hashes: HashMap::new(),
    };
    let mut drvs = Vec::new();
    for new in batch {
        if !new.info.path.name().ends_with(".drv") {
            continue;
        }
        let bytes = match &new.content {
            Staged::File(bytes) => bytes.clone(),
            Staged::Tree { path, .. } => match fs::read(path) {
                Ok(bytes) => bytes,
                // A directory named `.drv` is no derivation.
                Err(_) => continue,
            },
        };
        // A file that only happens to be named `.drv` records nothing and
        // cannot be built, so there is nothing to check.
        if let Ok(drv) = Derivation::parse(store.store_dir(), &bytes) {
            let drv = Rc::new(drv);
            checker.in_batch.insert(new.info.path.clone(), drv.clone());
            drvs.push((new.info.path.clone(), drv));
        }
    }
    for (path, drv) in drvs {
        drv.check_outputs(store.store_dir(), &path, &mut |input| checker.hash(input))?;
    }
    Ok(())
}

struct Checker<'a> {
    store: &'a Store,
    in_batch: HashMap<StorePath, Rc<Derivation>>,
    hashes: HashMap<StorePath, Rc<DrvHash>>,
}

impl Checker<'_> {
    /// The unmasked hash modulo of input derivation `path`.
    fn hash(&mut self, path: &StorePath) -> Result<Rc<DrvHash>, StoreError> {
        if let Some(hash) = self.hashes.get(path) {
            return Ok(hash.clone());
        }
        let drv = match self.in_batch.get(path) {
            Some(drv) => drv.clone(),
            None => {
                if !self.store.is_valid(path)? {
                    return Err(StoreError::NotValid(self.store.print_path(path)));
                }
                let file = self.store.real_path(path);
                let bytes = fs::read(&file).map_err(StoreError::io("reading", &file))?;
                Rc::new(Derivation::parse(self.store.store_dir(), &bytes)?)
            }
        };
        let hash = drv.hash_modulo(self.store.store_dir(), false, &mut |input| self.hash(input))?;
        let hash = Rc::new(hash);
        self.hashes.insert(path.clone(), hash.clone());
        Ok(hash)
    }
}
