//! Ready-to-paste settings that point each kind of client on the LAN at the hub.

use serde::Serialize;
use std::net::IpAddr;

#[derive(Debug, Clone, Serialize)]
pub struct ClientSetting {
    /// Short key (`chrony`, `esp-idf`, ...), for `--json` and scripts.
    pub key: &'static str,
    pub title: &'static str,
    /// Where it goes, or how to apply it.
    pub where_: &'static str,
    pub text: String,
}

/// The hub as clients are told to reach it: an address, or a name the LAN resolves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubAddress {
    Ip(IpAddr),
    Name(String),
}

impl std::str::FromStr for HubAddress {
    type Err = String;

    /// An IP address, or a host name (letters, digits, `-` and `.`, at most 253 characters).
    fn from_str(text: &str) -> Result<Self, String> {
        if let Ok(ip) = text.parse() {
            return Ok(Self::Ip(ip));
        }
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if text.len() <= 253 && text.split('.').all(label_ok) {
            Ok(Self::Name(text.to_owned()))
        } else {
            Err(format!("{text:?} is neither an IP address nor a host name (such as hub.lan)"))
        }
    }
}

impl std::fmt::Display for HubAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

/// Interfaces that are not the LAN: container and VM bridges, their virtual links, VPNs.
const NOT_LAN: [&str; 11] =
    ["docker", "br-", "veth", "virbr", "lxcbr", "lxdbr", "cni", "podman", "flannel", "tun", "wg"];

/// The hub's address to hand out: a private IPv4 address of a LAN interface (not a container
/// bridge, a VM bridge or a VPN), else any private IPv4, else any non-loopback IPv4, else any
/// non-loopback address.
pub fn default_address(addresses: &[(String, IpAddr)]) -> Option<IpAddr> {
    let usable = |(_, ip): &&(String, IpAddr)| !ip.is_loopback() && !ip.is_unspecified();
    let private = |(_, ip): &&(String, IpAddr)| matches!(ip, IpAddr::V4(v4) if v4.is_private());
    let lan = |(name, _): &&(String, IpAddr)| !NOT_LAN.iter().any(|p| name.starts_with(p));
    let all = || addresses.iter().filter(usable);
    all()
        .filter(private)
        .find(lan)
        .or_else(|| all().find(private))
        .or_else(|| all().find(|(_, ip)| ip.is_ipv4()))
        .or_else(|| all().next())
        .map(|(_, ip)| *ip)
}

pub fn settings(address: &HubAddress) -> Vec<ClientSetting> {
    let a = address.to_string();
    vec![
        ClientSetting {
            key: "chrony",
            title: "Linux with chrony",
            where_: "/etc/chrony/sources.d/syhub.sources (then: chronyc reload sources)",
            text: format!("server {a} iburst\n"),
        },
        ClientSetting {
            key: "ntpd",
            title: "Linux with ntpd or NTPsec",
            where_: "/etc/ntpsec/ntp.conf or /etc/ntp.conf, replacing the pool lines (then restart ntp)",
            text: format!("server {a} iburst\n"),
        },
        ClientSetting {
            key: "timesyncd",
            title: "Linux with systemd-timesyncd",
            where_: "/etc/systemd/timesyncd.conf.d/syhub.conf (then: systemctl restart systemd-timesyncd)",
            text: format!("[Time]\nNTP={a}\nFallbackNTP=\n"),
        },
        ClientSetting {
            key: "windows",
            title: "Windows (an administrator's command prompt)",
            where_: "cmd.exe, run as administrator",
            text: format!(
                "w32tm /config /manualpeerlist:\"{a},0x8\" /syncfromflags:manual /reliable:no /update\n\
                 net stop w32time && net start w32time\n\
                 w32tm /resync\n"
            ),
        },
        ClientSetting {
            key: "arduino-esp32",
            title: "ESP32 / ESP8266 with the Arduino core",
            where_: "setup(), after Wi-Fi is connected",
            text: format!(
                "#include <time.h>\n\
                 // UTC; or configTzTime(\"CET-1CEST,M3.5.0,M10.5.0/3\", \"{a}\") for local time\n\
                 configTime(0, 0, \"{a}\");\n"
            ),
        },
        ClientSetting {
            key: "esp-idf",
            title: "ESP-IDF (v5)",
            where_: "app_main(), after the network is up",
            text: format!(
                "#include \"esp_sntp.h\"\n\
                 esp_sntp_setoperatingmode(ESP_SNTP_OPMODE_POLL);\n\
                 esp_sntp_setservername(0, \"{a}\");\n\
                 esp_sntp_init();\n"
            ),
        },
        ClientSetting {
            key: "arduino-ntpclient",
            title: "Other Arduino boards (NTPClient library)",
            where_: "global scope, then timeClient.begin() in setup() and timeClient.update() in loop()",
            text: format!("WiFiUDP ntpUDP;\nNTPClient timeClient(ntpUDP, \"{a}\");\n"),
        },
        ClientSetting {
            key: "docker",
            title: "Docker containers",
            where_: "the Docker host, not the containers",
            text: match address {
                HubAddress::Ip(_) => format!(
                    "# Containers share the host's kernel clock and cannot set it: point the host at the hub\n\
                     # (chrony or timesyncd above). A container that asks for time itself can use:\n\
                     #   docker run --add-host ntp.hub:{a} ...   and query ntp.hub\n"
                ),
                HubAddress::Name(_) => format!(
                    "# Containers share the host's kernel clock and cannot set it: point the host at the hub\n\
                     # (chrony or timesyncd above). A container that asks for time itself queries {a}\n\
                     # (resolved through the host's DNS).\n"
                ),
            },
        },
        ClientSetting {
            key: "dnsmasq",
            title: "DHCP option 42 with dnsmasq (clients that take their NTP server from DHCP)",
            where_: "/etc/dnsmasq.d/ntp.conf (then restart dnsmasq)",
            text: match address {
                HubAddress::Ip(IpAddr::V4(_)) => format!("dhcp-option=option:ntp-server,{a}\n"),
                HubAddress::Ip(IpAddr::V6(_)) => format!("dhcp-option=option6:ntp-server,[{a}]\n"),
                // DHCP hands out addresses, not names; 0.0.0.0 is dnsmasq's own address.
                HubAddress::Name(_) => format!(
                    "# DHCP gives clients an address, not a name ({a}): with dnsmasq on the hub itself,\n\
                     dhcp-option=option:ntp-server,0.0.0.0\n\
                     # elsewhere, run clients-config --address with the hub's IP address.\n"
                ),
            },
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_names_the_hub() {
        for hub in ["192.168.1.10", "fd00::2", "hub.lan"] {
            for setting in settings(&hub.parse().unwrap()) {
                assert!(setting.text.contains(hub), "{hub}: {}", setting.key);
            }
        }
    }

    #[test]
    fn addresses_and_host_names_are_accepted_and_nonsense_is_not() {
        assert_eq!("fd00::2".parse(), Ok(HubAddress::Ip("fd00::2".parse().unwrap())));
        assert_eq!("hub.lan".parse(), Ok(HubAddress::Name("hub.lan".into())));
        for bad in ["", "hub..lan", "-hub", "hub lan", "hub;rm", "a/b"] {
            assert!(bad.parse::<HubAddress>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_default_address_is_a_private_ipv4_one_on_the_lan() {
        let list: Vec<(String, IpAddr)> = [
            ("lo", "127.0.0.1"),
            ("docker0", "172.17.0.1"),
            ("eth0", "fe80::1"),
            ("ppp0", "203.0.113.5"),
            ("wlan0", "192.168.1.10"),
        ]
        .iter()
        .map(|(n, a)| (n.to_string(), a.parse().unwrap()))
        .collect();
        let ip = |a: &str| Some(a.parse::<IpAddr>().unwrap());
        assert_eq!(default_address(&list), ip("192.168.1.10"));
        assert_eq!(default_address(&list[..4]), ip("172.17.0.1"), "a bridge before nothing");
        assert_eq!(default_address(&[list[0].clone(), list[3].clone()]), ip("203.0.113.5"));
        assert_eq!(default_address(&list[..1]), None);
    }
}
