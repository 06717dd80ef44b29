// The page reads JsSIP from window: one file, no module loader.
import JsSIP from "jssip";
window.JsSIP = JsSIP;
