//! OCI runtime-spec `linux.resources` types. Every field is optional: a field
//! absent from the config is never written to the kernel. Unknown fields are
//! ignored.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<DeviceRule>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<Pids>,
    #[serde(default, rename = "blockIO", skip_serializing_if = "Option::is_none")]
    pub block_io: Option<BlockIo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hugepage_limits: Option<Vec<HugepageLimit>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdma: Option<HashMap<String, Rdma>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unified: Option<HashMap<String, String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceRule {
    pub allow: bool,
    /// "a" (all), "c", "b"; absent means all.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<i64>,
    /// Any of "rwm"; absent means "rwm".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<i64>,
    /// Memory + swap (the v1 meaning); on v2 husk writes swap - limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<i64>,
    #[serde(default, rename = "kernelTCP", skip_serializing_if = "Option::is_none")]
    pub kernel_tcp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swappiness: Option<u64>,
    #[serde(default, rename = "disableOOMKiller", skip_serializing_if = "Option::is_none")]
    pub disable_oom_killer: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_hierarchy: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_before_update: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cpu {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime_runtime: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime_period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mems: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pids {
    /// <= 0 means unlimited ("max").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockIo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_weight: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_device: Option<Vec<WeightDevice>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle_read_bps_device: Option<Vec<ThrottleDevice>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle_write_bps_device: Option<Vec<ThrottleDevice>>,
    #[serde(default, rename = "throttleReadIOPSDevice", skip_serializing_if = "Option::is_none")]
    pub throttle_read_iops_device: Option<Vec<ThrottleDevice>>,
    #[serde(default, rename = "throttleWriteIOPSDevice", skip_serializing_if = "Option::is_none")]
    pub throttle_write_iops_device: Option<Vec<ThrottleDevice>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightDevice {
    pub major: i64,
    pub minor: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_weight: Option<u16>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThrottleDevice {
    pub major: i64,
    pub minor: i64,
    pub rate: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HugepageLimit {
    /// e.g. "2MB", "1GB", "64KB".
    pub page_size: String,
    pub limit: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    #[serde(default, rename = "classID", skip_serializing_if = "Option::is_none")]
    pub class_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priorities: Option<Vec<InterfacePriority>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InterfacePriority {
    pub name: String,
    pub priority: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rdma {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hca_handles: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hca_objects: Option<u32>,
}

/// `Some(v)` unless `v` is the zero that runc reads as "not set".
fn set<T: Default + PartialEq>(v: &mut Option<T>) {
    if v.as_ref().is_some_and(|x| *x == T::default()) {
        *v = None;
    }
}

impl Resources {
    /// The resources with runc's "not set" values removed, so that they are
    /// never written: engines send zeros for what the user did not ask
    /// (Docker always sends `blockIO.weight: 0`, `docker update --memory`
    /// sends `cpu.quota: 0`…). As runc's cgroup managers (fs and fs2), a 0
    /// is unset for memory limit/reservation/swap/kernel/kernelTCP, cpu
    /// shares/quota/period/realtime runtime and period, an empty cpus or
    /// mems, pids limit, blockIO weight and leafWeight (also per device)
    /// and network classID; `disableOOMKiller: false` is unset. Negative
    /// limits (-1) stay: they mean "unlimited". Everything else is kept as
    /// given (swappiness 0, idle 0, burst 0, throttle rates 0, hugepage
    /// limits and device rules are real values).
    pub fn normalized(&self) -> Resources {
        let mut r = self.clone();
        if let Some(m) = &mut r.memory {
            set(&mut m.limit);
            set(&mut m.reservation);
            set(&mut m.swap);
            set(&mut m.kernel);
            set(&mut m.kernel_tcp);
            if m.disable_oom_killer == Some(false) {
                m.disable_oom_killer = None;
            }
        }
        if let Some(c) = &mut r.cpu {
            set(&mut c.shares);
            set(&mut c.quota);
            set(&mut c.period);
            set(&mut c.realtime_runtime);
            set(&mut c.realtime_period);
            set(&mut c.cpus);
            set(&mut c.mems);
        }
        if let Some(p) = &mut r.pids {
            set(&mut p.limit);
        }
        if let Some(b) = &mut r.block_io {
            set(&mut b.weight);
            set(&mut b.leaf_weight);
            for d in b.weight_device.iter_mut().flatten() {
                set(&mut d.weight);
                set(&mut d.leaf_weight);
            }
        }
        if let Some(n) = &mut r.network {
            set(&mut n.class_id);
        }
        r
    }

    /// Overlays every field set in `o` onto `self` (used by `update` to merge
    /// `--resources` with individual flags).
    pub fn merge(&mut self, o: Resources) {
        if o.devices.is_some() {
            self.devices = o.devices;
        }
        if let Some(m) = o.memory {
            let s = self.memory.get_or_insert_with(Default::default);
            macro_rules! take { ($($f:ident),*) => { $( if m.$f.is_some() { s.$f = m.$f; } )* } }
            take!(limit, reservation, swap, kernel, kernel_tcp, swappiness, disable_oom_killer, use_hierarchy, check_before_update);
        }
        if let Some(c) = o.cpu {
            let s = self.cpu.get_or_insert_with(Default::default);
            macro_rules! take { ($($f:ident),*) => { $( if c.$f.is_some() { s.$f = c.$f; } )* } }
            take!(shares, quota, burst, period, realtime_runtime, realtime_period, cpus, mems, idle);
        }
        if let Some(p) = o.pids {
            if p.limit.is_some() {
                self.pids = Some(p);
            }
        }
        if let Some(b) = o.block_io {
            let s = self.block_io.get_or_insert_with(Default::default);
            macro_rules! take { ($($f:ident),*) => { $( if b.$f.is_some() { s.$f = b.$f; } )* } }
            take!(
                weight,
                leaf_weight,
                weight_device,
                throttle_read_bps_device,
                throttle_write_bps_device,
                throttle_read_iops_device,
                throttle_write_iops_device
            );
        }
        if o.hugepage_limits.is_some() {
            self.hugepage_limits = o.hugepage_limits;
        }
        if o.network.is_some() {
            self.network = o.network;
        }
        if o.rdma.is_some() {
            self.rdma = o.rdma;
        }
        if o.unified.is_some() {
            self.unified = o.unified;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_oci_names_and_ignores_unknown() {
        let r: Resources = serde_json::from_str(
            r#"{"memory":{"limit":1048576,"disableOOMKiller":true,"kernelTCP":5},
                "blockIO":{"weight":100,"throttleReadIOPSDevice":[{"major":8,"minor":0,"rate":7}]},
                "hugepageLimits":[{"pageSize":"2MB","limit":4194304}],
                "network":{"classID":3},
                "pids":{"limit":5},"futureThing":{"x":1},
                "devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3}]}"#,
        )
        .unwrap();
        let m = r.memory.as_ref().unwrap();
        assert_eq!(m.limit, Some(1048576));
        assert_eq!(m.disable_oom_killer, Some(true));
        assert_eq!(m.kernel_tcp, Some(5));
        assert_eq!(m.swap, None);
        let b = r.block_io.as_ref().unwrap();
        assert_eq!(b.weight, Some(100));
        assert_eq!(b.throttle_read_iops_device.as_ref().unwrap()[0].rate, 7);
        assert_eq!(r.hugepage_limits.as_ref().unwrap()[0].page_size, "2MB");
        assert_eq!(r.network.as_ref().unwrap().class_id, Some(3));
        assert_eq!(r.pids.as_ref().unwrap().limit, Some(5));
        let d = r.devices.as_ref().unwrap();
        assert_eq!(d[1].kind.as_deref(), Some("c"));
        assert_eq!(d[0].kind, None);
        assert!(r.cpu.is_none());
    }

    #[test]
    fn zeros_are_unset_as_with_runc() {
        // What Docker sends for `docker run` and `docker update --memory 128m`.
        let r: Resources = serde_json::from_str(
            r#"{"memory":{"limit":134217728,"reservation":0,"swap":0,"kernel":0,"kernelTCP":0,"swappiness":0,"disableOOMKiller":false},
                "cpu":{"shares":0,"quota":0,"period":0,"realtimeRuntime":0,"realtimePeriod":0,"cpus":"","mems":"","idle":0},
                "pids":{"limit":0},"blockIO":{"weight":0,"leafWeight":0,"weightDevice":[{"major":8,"minor":0,"weight":0}],
                "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":0}]},"network":{"classID":0}}"#,
        )
        .unwrap();
        let n = r.normalized();
        let m = n.memory.as_ref().unwrap();
        assert_eq!(
            (m.limit, m.reservation, m.swap, m.kernel, m.kernel_tcp, m.disable_oom_killer),
            (Some(134217728), None, None, None, None, None)
        );
        assert_eq!(m.swappiness, Some(0), "swappiness 0 is a value");
        let c = n.cpu.as_ref().unwrap();
        assert_eq!((c.shares, c.quota, c.period, c.cpus.as_deref(), c.idle), (None, None, None, None, Some(0)));
        assert_eq!(n.pids.as_ref().unwrap().limit, None);
        let b = n.block_io.as_ref().unwrap();
        assert_eq!((b.weight, b.leaf_weight, b.weight_device.as_ref().unwrap()[0].weight), (None, None, None));
        assert_eq!(b.throttle_read_bps_device.as_ref().unwrap()[0].rate, 0, "a 0 rate removes a throttle");
        assert_eq!(n.network.as_ref().unwrap().class_id, None);
        let r: Resources = serde_json::from_str(r#"{"cpu":{"quota":-1},"pids":{"limit":-1},"memory":{"limit":-1}}"#).unwrap();
        assert_eq!(r.normalized(), r, "-1 means unlimited and stays");
    }

    #[test]
    fn merge_overlays_only_set_fields() {
        let mut a: Resources = serde_json::from_str(r#"{"memory":{"limit":100,"swap":200},"cpu":{"shares":5}}"#).unwrap();
        let b: Resources = serde_json::from_str(r#"{"memory":{"limit":300},"pids":{"limit":9}}"#).unwrap();
        a.merge(b);
        let m = a.memory.unwrap();
        assert_eq!((m.limit, m.swap), (Some(300), Some(200)));
        assert_eq!(a.cpu.unwrap().shares, Some(5));
        assert_eq!(a.pids.unwrap().limit, Some(9));
    }
}
