//! BCM2711 GPIO function select and pull control (BCM2711 ARM Peripherals,
//! chapter 5): GPFSELn hold 3 bits per pin, GPIO_PUP_PDN_CNTRL_REGn 2 bits
//! per pin (0 none, 1 up, 2 down). Read-modify-write of 32-bit registers;
//! other pins keep their settings.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::ReadWrite;

register_structs! {
    Registers {
        (0x00 => gpfsel: [ReadWrite<u32>; 6]),
        (0x18 => _reserved),
        (0xe4 => pup_pdn: [ReadWrite<u32>; 4]),
        (0xf4 => @END),
    }
}

/// Pin functions used here.
#[derive(Clone, Copy)]
pub enum Function {
    Alt0 = 0b100,
}

/// Pull resistors.
#[derive(Clone, Copy)]
pub enum Pull {
    None = 0,
    Up = 1,
}

pub struct Gpio {
    regs: *const Registers,
}

impl Gpio {
    /// # Safety
    /// `base` must be the mapped BCM2711 GPIO block, driven by nobody else
    /// while this value lives.
    pub unsafe fn new(base: usize) -> Self {
        Self {
            regs: base as *const Registers,
        }
    }

    fn regs(&self) -> &Registers {
        // SAFETY: `new`'s contract.
        unsafe { &*self.regs }
    }

    /// Selects `function` and `pull` for pin `pin` (0..=57).
    pub fn set_function(&self, pin: usize, function: Function, pull: Pull) {
        let r = self.regs();
        let (reg, shift) = (pin / 10, (pin % 10) * 3);
        let v = r.gpfsel[reg].get() & !(0b111 << shift);
        r.gpfsel[reg].set(v | (function as u32) << shift);
        let (reg, shift) = (pin / 16, (pin % 16) * 2);
        let v = r.pup_pdn[reg].get() & !(0b11 << shift);
        r.pup_pdn[reg].set(v | (pull as u32) << shift);
    }
}
