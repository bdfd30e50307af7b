import QRCode from 'qrcode';

/**
 * The address as a QR code in inline SVG, drawn here so the page loads nothing from elsewhere
 * (a phone's camera opens it to enter the device code).
 */
export function qrSvg(address: string): Promise<string> {
  return QRCode.toString(address, { type: 'svg', margin: 2, errorCorrectionLevel: 'M' });
}
