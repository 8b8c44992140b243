//! Raspberry Pi 4 board facts under QEMU raspi4b, booted directly (no
//! semihosting, so the kernel has to stop the machine the way a board
//! does):
//! - the image loaded at a wrong address (`-device loader`, no `-kernel`)
//!   says so on the UART;
//! - a device tree in high-peripheral mode (the `soc` ranges moved above
//!   4 GiB with fdtput) is refused with one line and status 4 (this boot
//!   with semihosting: the refusal comes before the watchdog is known);
//! - `@exit` halts the machine through the PM watchdog (QEMU ends on its
//!   own), and with the `reboot` boot argument resets it into a new boot.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::{Report, run_cmd, sdimage};

/// Where the wrong-address boot loads the image (2 MiB: inside RAM, not
/// the link address 0x80000).
const WRONG_ADDRESS: u64 = 0x20_0000;

/// Runs QEMU raspi4b (tools/dtb/qemu-machines.sh) with `args` for at most
/// `secs` seconds and keeps its console in `log`; returns (ended on its
/// own, console).
fn qemu(root: &Path, secs: u64, args: &[&str], log: &Path) -> (bool, String) {
    let mut cmd = Command::new("timeout");
    cmd.current_dir(root)
        .args(["-k", "5", &secs.to_string(), "bash", "-c"])
        .arg(
            "source tools/dtb/qemu-machines.sh && qemu_machine_args rpi4 && \
             exec \"$QEMU\" \"${QEMU_MACHINE[@]}\" -nographic \"$@\"",
        )
        .arg("qemu")
        .args(args)
        .stdin(Stdio::null());
    let (status, out) = run_cmd(&mut cmd, false);
    let _ = fs::write(log, &out);
    (status.is_some_and(|s| s != 124 && s != 137), out)
}

/// QEMU arguments that boot the raw image `img` with `dtb` and `append`.
fn kernel<'a>(img: &'a str, dtb: &'a str, append: &'a str) -> [&'a str; 6] {
    ["-kernel", img, "-dtb", dtb, "-append", append]
}

pub fn run(root: &Path, elf: &Path, report: &mut Report) {
    let group = "rpi4 board facts";
    crate::step("rpi4: wrong load address, high-peripheral tree, PM watchdog halt and reboot");
    let logs = root.join("build/logs");
    let _ = fs::create_dir_all(&logs);
    let image = logs.join("rpi4-boardfacts.img");
    let made = sdimage::objcopy(root).and_then(|oc| {
        let st = Command::new(oc)
            .args(["-O", "binary"])
            .arg(elf)
            .arg(&image)
            .status()
            .map_err(|e| e.to_string())?;
        st.success()
            .then_some(())
            .ok_or_else(|| format!("llvm-objcopy: {st}"))
    });
    if let Err(e) = made {
        report.add(group, "raw image", false, e);
        return;
    }
    let img = image.display().to_string();
    let dtb = root.join("build/dtb/rpi4.dtb");
    let dtb_s = dtb.display().to_string();

    // 1. Loaded at 0x200000 and entered there (core 0 only).
    let load = format!("loader,file={img},addr={WRONG_ADDRESS:#x},force-raw=on");
    let entry = format!("loader,addr={WRONG_ADDRESS:#x},cpu-num=0");
    let (_, out) = qemu(
        root,
        20,
        &["-device", &load, "-device", &entry],
        &logs.join("rpi4-wrong-address.log"),
    );
    let want = format!(
        "boot: the kernel image runs at {WRONG_ADDRESS:#x} but is linked at 0x{:x}",
        sdimage::KERNEL_ADDRESS
    );
    let line = out.lines().find(|l| l.starts_with("boot: ")).unwrap_or("");
    report.add(
        group,
        "image at a wrong address: one line naming both addresses",
        line.starts_with(&want) && !out.contains("GCMA unikernel"),
        line.to_string(),
    );

    // 2. High-peripheral mode: the soc windows translated above 4 GiB.
    let high = logs.join("rpi4-high-peripheral.dtb");
    let edited = fs::copy(&dtb, &high).is_ok()
        && Command::new("fdtput")
            .args(["-t", "x"])
            .arg(&high)
            .args(["/soc", "ranges"])
            .args(["7e000000", "4", "7e000000", "1800000"])
            .args(["7c000000", "4", "7c000000", "2000000"])
            .args(["40000000", "4", "c0000000", "800000"])
            .status()
            .is_ok_and(|s| s.success());
    if !edited {
        report.add(group, "high-peripheral tree (fdtput)", false, "");
    } else {
        let h = high.display().to_string();
        // Semihosting: the refusal comes before the PM watchdog is found.
        let append = "board=rpi4 semihosting mode=selftest";
        let args = [
            &["-semihosting-config", "enable=on,target=native"][..],
            &kernel(&img, &h, append),
        ]
        .concat();
        let (ended, out) = qemu(root, 60, &args, &logs.join("rpi4-high-peripheral.log"));
        let line = out
            .lines()
            .find(|l| l.starts_with("boot: the device tree puts"))
            .unwrap_or("");
        report.add(
            group,
            "high-peripheral tree refused with one line, status 4",
            ended
                && line.contains("UART 'serial@7e201000' at 0x47e201000, above 4 GiB")
                && out.contains("@exit status=4 reason=boot-failed")
                && !out.contains("@test "),
            format!("{line} (QEMU ended by itself: {ended})"),
        );
    }

    // 3. @exit without semihosting: the PM watchdog halts the machine.
    let (ended, out) = qemu(
        root,
        60,
        &kernel(&img, &dtb_s, "board=rpi4 mode=fault"),
        &logs.join("rpi4-watchdog-halt.log"),
    );
    report.add(
        group,
        "PM watchdog halt: QEMU ends by itself after @exit",
        ended
            && out.contains("@exit status=3")
            && out.contains("(halted: power-cycle the board)")
            && !out.contains("did not reset"),
        format!("QEMU ended by itself: {ended}"),
    );

    // 4. ... and with `reboot`, resets into a new boot (killed after 20 s).
    let (_, out) = qemu(
        root,
        20,
        &kernel(&img, &dtb_s, "board=rpi4 mode=fault reboot"),
        &logs.join("rpi4-watchdog-reboot.log"),
    );
    let boots = out.matches("GCMA unikernel").count();
    report.add(
        group,
        "PM watchdog reboot: the kernel boots again",
        boots >= 2 && out.contains("(rebooting through the PM watchdog)"),
        format!("{boots} boots in 20 s"),
    );
    let _ = fs::remove_file(&image);
}
