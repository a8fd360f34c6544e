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

/// The hub's address to hand out: the first private IPv4 address of its interfaces, else any
/// non-loopback IPv4, else any non-loopback address.
pub fn default_address(addresses: &[IpAddr]) -> Option<IpAddr> {
    let usable = |ip: &&IpAddr| !ip.is_loopback() && !ip.is_unspecified();
    let private = |ip: &&IpAddr| matches!(ip, IpAddr::V4(v4) if v4.is_private());
    addresses
        .iter()
        .filter(usable)
        .find(private)
        .or_else(|| addresses.iter().filter(usable).find(|ip| ip.is_ipv4()))
        .or_else(|| addresses.iter().find(usable))
        .copied()
}

pub fn settings(address: IpAddr) -> Vec<ClientSetting> {
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
                 esp_sntp_setoperatingmode(SNTP_OPMODE_POLL);\n\
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
            text: format!(
                "# Containers share the host's kernel clock and cannot set it: point the host at the hub\n\
                 # (chrony or timesyncd above). A container that asks for time itself can use:\n\
                 #   docker run --add-host ntp.hub:{a} ...   and query ntp.hub\n"
            ),
        },
        ClientSetting {
            key: "dnsmasq",
            title: "DHCP option 42 with dnsmasq (clients that take their NTP server from DHCP)",
            where_: "/etc/dnsmasq.d/ntp.conf (then restart dnsmasq)",
            text: format!("dhcp-option=option:ntp-server,{a}\n"),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_names_the_hub() {
        let address: IpAddr = "192.168.1.10".parse().unwrap();
        for setting in settings(address) {
            assert!(setting.text.contains("192.168.1.10"), "{}", setting.key);
        }
    }

    #[test]
    fn the_default_address_is_a_private_ipv4_one() {
        let list: Vec<IpAddr> = ["127.0.0.1", "fe80::1", "203.0.113.5", "192.168.1.10"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(default_address(&list), Some("192.168.1.10".parse().unwrap()));
        assert_eq!(default_address(&list[..3]), Some("203.0.113.5".parse().unwrap()));
        assert_eq!(default_address(&list[..1]), None);
    }
}
